"""Supervising one task in a job process: time limit, cancel, memory, death, shutdown.

``supervise`` hands the task to the process and then only waits — on the process's
socket and pidfd, with a short timeout — so the thread doing it never competes for the
GIL with a simulation. Between waits it checks the task's limits; whatever ends the
task, it returns a typed ``Ending`` and the runner records it. A process that is killed
here is not reused: the runner starts a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .execution import JobOutcome, JobTask
from .jobprocess import JobProcess, ProcessExited
from .states import JobStatus, ReasonCode

#: Seconds between memory checks of a running job process.
MEMORY_POLL_SECONDS = 0.1
#: Seconds between checks whether a running job was cancelled (a store read).
CANCEL_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Watch:
    """The limits and signals one task runs under."""

    time_limit: float  # seconds
    memory_mb: int  # resident memory; 0 = unlimited
    cancelled: Callable[[], bool]  # polled every CANCEL_POLL_SECONDS
    halted: threading.Event  # the server is shutting down and the grace period is over
    on_log: Callable[[str], None]  # a line for the task's job logs


@dataclass(frozen=True)
class Finished:
    """The process returned an outcome for every job of the task."""

    outcomes: list[JobOutcome]
    seconds: float


@dataclass(frozen=True)
class TimedOut:
    """The task ran past its time limit and its process was killed."""

    seconds: float
    limit: float


@dataclass(frozen=True)
class OutOfMemory:
    """The process's resident memory passed the task's limit and it was killed."""

    seconds: float
    rss_mb: float
    limit_mb: int


@dataclass(frozen=True)
class Crashed:
    """The process died on its own: a signal (segfault, abort, OOM killer) or an exit."""

    seconds: float
    how: str  # "was killed by signal 11 (SIGSEGV)"


@dataclass(frozen=True)
class Stopped:
    """The process was killed because the task was cancelled, or the server stopped."""

    seconds: float
    why: str  # "cancelled" | "shutdown"


Ending = Finished | TimedOut | OutOfMemory | Crashed | Stopped


def supervise(process: JobProcess, tasks: list[JobTask], watch: Watch) -> Ending:
    """Run ``tasks`` in ``process`` until they finish or a limit ends them."""
    started = time.monotonic()
    next_cancel_check = started + CANCEL_POLL_SECONDS
    try:
        process.run(tasks)
    except OSError:  # it died between two tasks
        process.kill()
        return Crashed(0.0, f"was gone before the task started ({process.proc.returncode})")
    while True:
        elapsed = time.monotonic() - started
        timeout = max(0.0, min(MEMORY_POLL_SECONDS, watch.time_limit - elapsed))
        try:
            message = process.receive_one(timeout)
            while message is not None:
                if message[0] == "done":
                    return Finished(message[1], time.monotonic() - started)
                if message[0] == "log":
                    watch.on_log(message[1])
                message = process.receive_one(0)
        except ProcessExited as exc:
            return Crashed(time.monotonic() - started, str(exc))
        now = time.monotonic()
        elapsed = now - started
        if elapsed >= watch.time_limit:
            process.kill()
            return TimedOut(elapsed, watch.time_limit)
        rss = process.rss_mb()
        if watch.memory_mb and rss > watch.memory_mb:
            process.kill()
            return OutOfMemory(elapsed, rss, watch.memory_mb)
        if watch.halted.is_set():
            process.kill()
            return Stopped(elapsed, "shutdown")
        if now >= next_cancel_check:
            next_cancel_check = now + CANCEL_POLL_SECONDS
            if watch.cancelled():
                process.kill()
                return Stopped(elapsed, "cancelled")


def failure(ending: Ending) -> tuple[JobStatus, ReasonCode, str]:
    """The status, reason code and message a job that did not finish is stored with."""
    status, code, message = JobStatus.FAILED, ReasonCode.PROCESS_CRASHED, ""
    if isinstance(ending, TimedOut):
        status, code = JobStatus.CANCELLED, ReasonCode.RAN_TOO_LONG
        message = (
            f"Job ran longer than its maximum execution time of {ending.limit:.0f} s "
            "(options.max_execution_time / QRS_MAX_EXECUTION_TIME); its process "
            "was stopped."
        )
    elif isinstance(ending, OutOfMemory):
        code = ReasonCode.MEMORY_LIMIT
        message = (
            f"The job used {ending.rss_mb:,.0f} MiB of memory, over its limit of "
            f"{ending.limit_mb:,} MiB (QRS_JOB_MEMORY_MB); its process was stopped "
            "and the job was not retried. Use fewer qubits, shots or parameter "
            "sets per pub, or a method such as matrix_product_state."
        )
    elif isinstance(ending, Crashed):
        hint = (
            " (for example by the kernel's out-of-memory killer)"
            if "SIGKILL" in ending.how
            else ""
        )
        message = (
            f"The job's process {ending.how}{hint} while running it: a crash in "
            "the simulator or executor. The job was not retried."
        )
    return status, code, message


def how_ended(ending: Ending) -> str:
    """``passed its memory limit (...)``, ``was killed by SIGKILL``...: for log lines."""
    if isinstance(ending, OutOfMemory):
        return f"passed its memory limit ({ending.rss_mb:,.0f} MiB)"
    return getattr(ending, "how", "ended")
