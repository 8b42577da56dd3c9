"""Per-job context for code on the execution path: log lines and cooperative stopping.

The runner binds a ``JobContext`` for the job it runs; executors (including user plug-ins
with the plain three-argument interface) call ``emit()`` to add a line to the job's log
and ``checkpoint()`` between units of work so a cancelled or timed-out job stops early.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_log = logging.getLogger("qrs.job")


class JobAborted(Exception):
    """Raised by ``checkpoint()`` once the runner has given up on the job."""


@dataclass
class JobContext:
    """What the runner shares with the code running one job."""

    job_id: str
    sink: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "qrs_job_context", default=None
)


def emit(message: str) -> None:
    """Append ``message`` to the log of the job being executed (no-op outside a job)."""
    context = _current.get()
    if context is not None:
        context.sink(message)
        _log.debug("job %s: %s", context.job_id, message)


def clip(line: str, limit: int) -> str:
    """``line`` cut to ``limit`` characters, saying how many were cut: options a job
    ignores are logged as the user gave them, and a user may give megabytes."""
    if limit <= 0 or len(line) <= limit:
        return line
    return f"{line[:limit]} ... [{len(line) - limit} characters cut: QRS_MAX_LOG_LINE_CHARS]"


def current_job_id() -> str | None:
    """The id of the job this thread executes, if any (log records carry it)."""
    context = _current.get()
    return context.job_id if context is not None else None


def checkpoint() -> None:
    """Raise ``JobAborted`` if the job was cancelled or ran out of time."""
    context = _current.get()
    if context is not None and context.stop.is_set():
        raise JobAborted(context.stop_reason or "job stopped")


@contextmanager
def bound(context: JobContext) -> Iterator[JobContext]:
    """Make ``context`` the current job for ``emit``/``checkpoint`` in this thread."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
