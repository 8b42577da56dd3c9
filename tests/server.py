"""A real QRS server process for tests: ``qrs serve`` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """Start, stop and restart one server on one data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 gunicorn: bool = False, workers: int = 1) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.gunicorn = gunicorn
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> "ServerProcess":
        env = {**os.environ, "QRS_DATA_DIR": str(self.data_dir), "QRS_HOST": "127.0.0.1",
               "QRS_PORT": str(self.port), "QRS_LOG_LEVEL": "INFO",
               "QRS_WORKERS": str(self.workers), "PYTHONFAULTHANDLER": "1",
               **self.extra_env}
        if "PROMETHEUS_MULTIPROC_DIR" not in self.extra_env:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # set by an in-process create_app
        cmd = [sys.executable, "-m", "qrs.cli", "serve"]
        if not self.gunicorn:
            cmd.append("--dev")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""
