"""Start a real QRS for a test session: a free loopback port, its own data directory,
the control API on. What the ``qrs_server`` fixture yields.

One worker runs ``qrs serve --dev`` (werkzeug, threaded); more run gunicorn on the app
factory (``qrs:create_app()``), so neither needs a source checkout of QRS.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .control_client import Control


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """One QRS server process on loopback, started and stopped by the test session."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        settings: Mapping[str, str] | None = None,
        workers: int = 1,
        keys: bool = False,
        scenario: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.settings = dict(settings or {})
        self.workers = max(1, int(workers))
        self.scenario = scenario
        self.port = 0
        self.url = ""
        self.log_path = self.data_dir.parent / "qrs-server.log"
        #: In key mode, a user key for the service and an admin key for the control API.
        self.user_key = "qrs_user_" + secrets.token_urlsafe(16) if keys else "qrs-test"
        self.admin_key: str | None = "qrs_admin_" + secrets.token_urlsafe(16) if keys else None
        self._proc: subprocess.Popen | None = None

    def _command(self) -> list[str]:
        if self.workers == 1:
            cmd = [sys.executable, "-m", "qrs.cli", "serve", "--dev"]
            return cmd + (["--scenario", self.scenario] if self.scenario else [])
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "gthread",
            "--threads",
            "16",
            "--timeout",
            "300",
            "qrs:create_app()",
        ]

    def _environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "QRS_DATA_DIR": str(self.data_dir),
            "QRS_HOST": "127.0.0.1",
            "QRS_PORT": str(self.port),
            "QRS_WORKERS": str(self.workers),
            "QRS_CONTROL_API": "1",
            "QRS_LOG_LEVEL": "WARNING",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's own, under its data dir
        if self.scenario and self.workers > 1:
            env["QRS_SCENARIO"] = str(Path(self.scenario).resolve())
        if self.admin_key:
            keys_file = self.data_dir.parent / "qrs-keys.txt"
            keys_file.write_text(f"user:{self.user_key}\nadmin:{self.admin_key}:admin\n")
            keys_file.chmod(0o600)
            env["QRS_API_KEYS_FILE"] = str(keys_file)
        env.update(self.settings)
        return env

    def start(self, timeout: float = 180.0) -> LocalServer:
        """Start and wait until ``/health`` answers (QRS imports qiskit first: seconds)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # another process may take the free port before we bind it
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    self._command(),
                    env=self._environment(),
                    cwd=self.data_dir.parent,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_healthy(timeout):
                return self
            if "Address already in use" not in self.log() or attempt == 2:
                break
        self.stop()
        raise RuntimeError(f"QRS did not start (log {self.log_path}):\n{self.log()}")

    def _wait_healthy(self, timeout: float) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            try:
                with opener.open(self.url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the server's process group; SIGKILL it if it does not go."""
        if self._proc is None or self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def log(self) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    def control(self) -> Control:
        return Control(self.url, self.admin_key)

    def connect(self, token: str | None = None, **kwargs: Any):
        """A fresh stock ``QiskitRuntimeService`` on this server (key-leak guard armed)."""
        from ..client import connect

        return connect(self.url, token=token or self.user_key, **kwargs)
