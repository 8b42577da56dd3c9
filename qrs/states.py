"""Wire words, spelled once: job statuses and session states as the client expects them."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """Job states; the client upper-cases these and maps them to its own names."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_JOB_STATES


FINAL_JOB_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class SessionState(str, Enum):
    """Session lifecycle ``open → active → inactive → closed``."""

    OPEN = "open"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CLOSED = "closed"


class SessionMode(str, Enum):
    """A dedicated session runs its jobs one at a time; a batch runs them in parallel."""

    DEDICATED = "dedicated"
    BATCH = "batch"


class ReasonCode(int, Enum):
    """``state.reason_code`` values the client interprets."""

    RAN_TOO_LONG = 1305  # Cancelled + 1305 => client raises a max-time error
    EXECUTION_FAILED = 1500
    WORKER_LOST = 1517
    SESSION_CLOSED = 1218
    CANCELLED_BY_USER = 1300
    MEMORY_LIMIT = 1518  # the job's process exceeded QRS_JOB_MEMORY_MB (not retried)
    PROCESS_CRASHED = 1519  # the job's process died of a signal (not retried)
