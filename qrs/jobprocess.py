"""The supervisor's handle on one job process (``qrs.workhorse``).

A job process is a fresh interpreter (``subprocess`` fork + exec, never a bare fork), so
nothing of the server's state — CUDA above all, SQLite connections, gunicorn's sockets —
is inherited; the GPU executor initialises CUDA in the job process only. It runs in a
session of its own, so killing it takes down anything it started (a Dask LocalCluster)
and a signal meant for the web server's process group does not reach it.

Every wait here is on a socket or on the process's pidfd: the supervising thread never
holds the GIL while a job runs, so leases, gunicorn heartbeats and status polls go on.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from multiprocessing import Pipe
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .executors.base import ExecutorUnavailable
from .workhorse import Init

if TYPE_CHECKING:
    from .config import Config
    from .execution import JobTask

log = logging.getLogger(__name__)

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class ProcessExited(Exception):
    """The job process is gone; ``describe()`` says how it ended."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(describe_exit(returncode))
        self.returncode = returncode


def describe_exit(returncode: int | None) -> str:
    """``killed by signal 11 (SIGSEGV)``, ``exited with status 3``, for job reasons."""
    if returncode is None:
        return "ended"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


def pickled_executor(executor: Any) -> bytes:
    """The executor as a job process receives it; refuses what cannot cross a process."""
    try:
        return pickle.dumps(executor)
    except Exception as exc:
        raise ExecutorUnavailable(
            f"The executor {type(executor).__qualname__} cannot be sent to a job process "
            f"({type(exc).__name__}: {exc}). Jobs run in separate processes: give the "
            "executor picklable attributes and build heavy state in setup()."
        ) from None


class JobProcess:
    """One live job process: start it, hand it tasks, read its messages, kill it."""

    def __init__(self, proc: subprocess.Popen, conn: Any) -> None:
        self.proc = proc
        self.conn = conn
        self.pid = proc.pid
        self.executor_name = ""
        try:
            self._pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # no pidfd: wake up often enough to notice a death
            self._pidfd = None
        self.tasks_run = 0

    # --------------------------------------------------------------- lifecycle
    @classmethod
    def start(cls, config: Config, executor_blob: bytes) -> JobProcess:
        """Start a job process and wait until its executor is set up.

        Raises ``ExecutorUnavailable`` with the executor's own message when its
        ``setup()`` refuses (no GPU, no Dask scheduler), or when the process dies first.
        """
        ours, theirs = Pipe(duplex=True)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("MALLOC_ARENA_MAX", "4")  # bounded arenas keep RLIMIT_AS meaningful
        proc = subprocess.Popen(
            [sys.executable, "-m", "qrs.workhorse", str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()],
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        theirs.close()
        process = cls(proc, ours)
        try:
            ours.send(
                (
                    "init",
                    Init(
                        config=config, executor=executor_blob, sys_path=[p for p in sys.path if p]
                    ),
                )
            )
            message = process.receive_one(config.job_process_start_timeout)
        except ProcessExited as exc:
            raise ExecutorUnavailable(f"The job process {exc}; see the server log.") from None
        except BaseException:
            process.kill()
            raise
        if message is None:
            process.kill()
            raise ExecutorUnavailable(
                f"The job process did not set its executor up within "
                f"{config.job_process_start_timeout:.0f} s (QRS_JOB_PROCESS_START_TIMEOUT)."
            )
        if message[0] == "unavailable":
            process.kill()
            raise ExecutorUnavailable(message[1])
        _kind, process.executor_name, _pid = message
        log.debug("job process %d ready (%s executor)", process.pid, process.executor_name)
        return process

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its session; reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - its session leader changed hands
            self.proc.kill()
        self.proc.wait()
        self._release()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the process to exit (its executor's ``close()`` runs); kill it if it lingers."""
        if self.alive:
            try:
                self.conn.send(("close",))
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _release(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self.conn.close()

    # ---------------------------------------------------------------- talking
    def run(self, tasks: list[JobTask]) -> None:
        """Hand the process one task; its messages arrive through ``receive``."""
        self.tasks_run += 1
        self.conn.send(("run", tasks))

    def receive_one(self, timeout: float) -> tuple | None:
        """The next message, or ``None`` after ``timeout`` s; ``ProcessExited`` if it died."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            handles: list[Any] = [self.conn]
            if self._pidfd is not None:
                handles.append(self._pidfd)
            ready = wait(
                handles,
                timeout=max(0.0, min(remaining, 0.5 if self._pidfd is None else remaining)),
            )
            if self.conn in ready:
                try:
                    return self.conn.recv()
                except (EOFError, OSError):
                    self.proc.wait()
                    raise ProcessExited(self.proc.returncode) from None
            if ready or self.proc.poll() is not None:
                self.proc.wait()
                raise ProcessExited(self.proc.returncode)
            if remaining <= 0:
                return None

    def rss_mb(self) -> float:
        """Resident memory of the process now, in MiB (0 once it is gone)."""
        try:
            with open(f"/proc/{self.pid}/statm") as statm:
                return int(statm.read().split()[1]) * PAGE_BYTES / 2**20
        except (OSError, IndexError, ValueError):
            return 0.0
