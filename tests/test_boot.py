"""The server always boots: many fresh multi-worker gunicorn starts on a busy machine.

Issue 13 saw 4 of 30 fresh 4-worker starts lose a worker at boot to "database is
locked" on ``PRAGMA journal_mode=WAL``, after which gunicorn shut the whole server down.
Database set-up now happens once per data directory under a file lock, and connections
no longer ask for WAL. Here 50 starts, two at a time and next to a CPU burner (so the
workers' set-ups interleave the way a loaded machine makes them), must all boot: health
answers 200, all four workers build their app, and the master and every worker are
still alive afterwards. ``QRS_TEST_BOOT_STARTS`` runs fewer (or more) starts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from .support.deploy import gunicorn_workers
from .support.polling import wait_until
from .support.server import ServerProcess

pytestmark = [pytest.mark.system, pytest.mark.slow]

STARTS = int(os.environ.get("QRS_TEST_BOOT_STARTS", "50"))
WORKERS = 4
AT_ONCE = 2
#: What a worker that built its app logs (``create_app``), once per worker.
BOOTED = re.compile(r"QRS \S+: data in ")
#: What gunicorn logs when a worker dies at boot (and it then halts).
BROKEN = ("Worker failed to boot", "Traceback", "database is locked", "Shutting down: Master")


def boot_once(root: Path, number: int) -> str | None:
    """Start a 4-worker gunicorn on a fresh data directory; ``None`` if all of it booted,
    else what went wrong with the server's log."""
    server = ServerProcess(root / f"start-{number}" / "data", gunicorn=True, workers=WORKERS,
                           env={"QRS_EXECUTOR_THREADS": "1"})
    try:
        server.start(timeout=300)

        def booted() -> bool:
            log = server.log()
            if server.proc.poll() is not None or any(word in log for word in BROKEN):
                raise AssertionError("a worker or the master died")
            return len(BOOTED.findall(log)) >= WORKERS

        wait_until(booted, timeout=300, interval=0.2, what="every worker to build its app")
        alive = gunicorn_workers(server.proc.pid)
        answer = requests.get(server.url + "/health", timeout=30)
        if answer.status_code != 200 or len(alive) != WORKERS or server.proc.poll() is not None:
            raise AssertionError(f"health {answer.status_code}, {len(alive)} live workers")
        return None
    except Exception as exc:
        return f"start {number}: {exc}\n{server.log()[-3000:]}"
    finally:
        server.stop(signal.SIGINT)  # quick shutdown: nothing runs, nothing to wait for


def test_fresh_multi_worker_starts_all_boot_on_a_busy_machine(tmp_path):
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with ThreadPoolExecutor(AT_ONCE) as pool:
            failures = [f for f in pool.map(lambda n: boot_once(tmp_path, n), range(STARTS)) if f]
    finally:
        burner.kill()
        burner.wait()
    assert not failures, f"{len(failures)} of {STARTS} starts failed:\n" + "\n".join(failures)
