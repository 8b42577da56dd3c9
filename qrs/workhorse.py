"""A job process: ``python -m qrs.workhorse FD``, started and supervised by ``JobProcess``.

Aer holds the GIL for a whole run, may use every byte of memory it is given and can
crash; so jobs never run in a process that serves HTTP or renews leases. Each runner
slot owns one such process, as Celery's prefork pool or RQ's work horse do, but reused
between jobs: qiskit stays imported, simulators and noise models stay cached.

The process talks to its supervisor over one socket (``FD``, a ``multiprocessing``
``Connection``). Messages, all tuples:

* supervisor → here: ``("init", Init)`` once, then ``("run", [JobTask, ...])`` per task
  and finally ``("close",)`` (or end of file);
* here → supervisor: ``("ready", executor_name, pid)`` or ``("unavailable", message)``
  once, then per task any number of ``("log", line)`` and one ``("done", [JobOutcome])``.

It ignores SIGTERM and SIGINT (its supervisor decides when a running job stops, e.g. at
the end of a graceful shutdown) and dies with the thread that started it
(``PR_SET_PDEATHSIG``), so a killed web worker never leaves a simulation running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import resource
import signal
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from .config import Config

log = logging.getLogger(__name__)

#: Address space allowed above what the process maps once warm, besides the job's own
#: memory: thread stacks and allocator arenas of Aer's and BLAS's threads.
ADDRESS_SPACE_HEADROOM_MB = 2048


@dataclass(frozen=True)
class Init:
    """What a job process needs to build its executor the way the server configured it."""

    config: Config
    executor: bytes  # the pickled executor, before setup()
    sys_path: list[str] = field(default_factory=list)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the thread that started it ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the end-of-file on the socket still ends us
        pass
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def _limit_address_space(job_memory_mb: int) -> None:
    """Bound this process's address space to what it maps now plus the job's allowance.

    An allocation beyond it fails at once (``MemoryError`` in numpy, ``bad_alloc`` in
    Aer) instead of pushing the machine into the kernel's out-of-memory killer; the
    supervisor's RSS check gives the clear reason for slower growth.
    """
    if job_memory_mb <= 0:
        return
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + (job_memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError) as exc:  # a lower hard limit already applies
        log.warning("could not limit the job process's address space: %s", exc)


class _Channel:
    """The socket to the supervisor; sends are serialised (executors may log from threads)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self.lock:
            self.conn.send(message)


def serve(conn: Connection) -> int:
    """Set the executor up, then run tasks until the supervisor closes the socket."""
    from . import _import_qiskit_in_this_thread, joblog
    from .execution import run_tasks
    from .executors.base import ExecutorUnavailable
    from .logs import configure_logging
    from .metadata import BackendMetadataProvider

    channel = _Channel(conn)
    kind, init = conn.recv()
    assert kind == "init", kind
    for entry in reversed(init.sys_path):  # plug-in executors import as the server did
        if entry not in sys.path:
            sys.path.insert(0, entry)
    configure_logging(init.config)
    _import_qiskit_in_this_thread()
    try:
        executor = pickle.loads(init.executor)
        executor.setup(init.config, BackendMetadataProvider())
    except ExecutorUnavailable as exc:
        channel.send(("unavailable", str(exc)))
        return 2
    except Exception as exc:
        channel.send(
            (
                "unavailable",
                (
                    f"the executor could not be set up in its job process: "
                    f"{type(exc).__name__}: {exc}"
                ),
            )
        )
        return 2
    _limit_address_space(init.config.job_memory_mb)
    channel.send(("ready", executor.name, os.getpid()))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return 0
            if message[0] != "run":
                return 0
            tasks = message[1]
            context = joblog.JobContext(
                ",".join(task.job_id for task in tasks),
                sink=lambda line: channel.send(("log", line)),
            )
            with joblog.bound(context):
                outcomes = run_tasks(executor, tasks)
            channel.send(("done", outcomes))
    finally:
        executor.close()


def main(argv: list[str]) -> int:
    """Entry point: ``python -m qrs.workhorse FD PARENT_PID``."""
    fd, parent = int(argv[1]), int(argv[2])
    _die_with_parent(parent)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.umask(0o077)
    return serve(Connection(fd))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
