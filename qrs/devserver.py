"""A QRS server as a child process, for benchmarks, soak runs, tools and the tests.

``ServerProcess(data_dir).start()`` runs ``qrs serve`` (gunicorn, or werkzeug with
``gunicorn=False``) on a free loopback port and returns once ``/health`` answers; its
output goes to ``server-<port>.log`` beside the data directory. It runs from a source
checkout (``qrs serve`` reads ``gunicorn.conf.py`` and ``wsgi.py`` there). Only the
standard library is used, so benchmarks need nothing from the test suite.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: The source checkout QRS runs from (holds gunicorn.conf.py and wsgi.py).
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """Start, stop and restart one server on one data directory."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        env: dict[str, str] | None = None,
        gunicorn: bool = False,
        workers: int = 1,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.gunicorn = gunicorn
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        """Start the server; raise with its log if it exits or is not healthy in time."""
        env = {
            **os.environ,
            "QRS_DATA_DIR": str(self.data_dir),
            "QRS_HOST": "127.0.0.1",
            "QRS_PORT": str(self.port),
            "QRS_LOG_LEVEL": "INFO",
            "QRS_WORKERS": str(self.workers),
            "PYTHONFAULTHANDLER": "1",
            **self.extra_env,
        }
        if "PROMETHEUS_MULTIPROC_DIR" not in self.extra_env:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # set by an in-process create_app
        cmd = [sys.executable, "-m", "qrs.cli", "serve"]
        if not self.gunicorn:
            cmd.append("--dev")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if _healthy(self.url):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Signal the whole process group (gunicorn's workers too); SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        """The last 5,000 characters of the server's output."""
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""
