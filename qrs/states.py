"""Wire words, spelled once: program ids, job statuses and session states as the client
expects them."""

from __future__ import annotations

from enum import Enum


class Program(str, Enum):
    """The ``program_id`` values this server runs (``POST /jobs``)."""

    SAMPLER = "sampler"
    ESTIMATOR = "estimator"
    EXECUTOR = "executor"  # QuantumPrograms from the client's ``Executor`` (0.50+)
    NOISE_LEARNER = "noise-learner"  # the client's NoiseLearner / NoiseLearnerV3


#: Every program id, in the order error messages list them.
PROGRAMS = tuple(program.value for program in Program)


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
#: States of a job that still needs a worker (a session with one of these is not idle).
PENDING_JOB_STATES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


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
