"""The store's rows as dataclasses: what the rest of QRS reads and hands in."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..states import JobStatus, SessionMode, SessionState

#: Columns of a job row that lists and status polls read (never params or results).
JOB_COLUMNS = (
    "id, user_id, program_id, backend, session_id, status, reason, reason_code, created, "
    "running_at, finished_at, tags, log_level, private, max_execution_time, num_pubs, "
    "num_circuits, claimed_by, heartbeat, attempts, usage_seconds"
)


def new_id() -> str:
    """A 20-character lowercase id, like IBM's job ids (95 random bits)."""
    return "d" + base64.b32encode(secrets.token_bytes(12)).decode().lower()[:19]


@dataclass
class Job:
    """One job row (without its params or result payload)."""

    id: str
    user_id: str
    program_id: str
    backend: str
    session_id: str | None
    status: JobStatus
    reason: str | None
    reason_code: int | None
    created: float
    running_at: float | None
    finished_at: float | None
    tags: list[str]
    log_level: str | None
    private: bool
    max_execution_time: int | None
    num_pubs: int
    num_circuits: int
    claimed_by: str | None
    heartbeat: float | None
    attempts: int
    usage_seconds: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """A job from a row of ``SELECT {JOB_COLUMNS}``."""
        values = dict(row)
        values["status"] = JobStatus(values["status"])
        values["tags"] = json.loads(values["tags"])
        values["private"] = bool(values["private"])
        return cls(**values)


@dataclass
class Session:
    """One session (or batch) row."""

    id: str
    user_id: str
    mode: SessionMode
    backend: str | None
    state: SessionState
    accepting_jobs: bool
    max_ttl: int
    interactive_ttl: int
    created: float
    activated_at: float | None
    closed_at: float | None
    last_job_started: float | None
    last_job_completed: float | None
    close_reason: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Session:
        """A session from a row of ``SELECT * FROM sessions``."""
        values = dict(row)
        values["mode"] = SessionMode(values["mode"])
        values["state"] = SessionState(values["state"])
        values["accepting_jobs"] = bool(values["accepting_jobs"])
        return cls(**values)


@dataclass
class NewJob:
    """What the API hands the store to create a job."""

    user_id: str
    program_id: str
    backend: str
    params_text: str
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    log_level: str | None = None
    private: bool = False
    max_execution_time: int | None = None
    num_pubs: int = 0
    num_circuits: int = 0
    width: int = 0
    dry_run: bool = False
    idempotency_key: str | None = None


@dataclass
class JobQuery:
    """Filters and paging of ``GET /jobs``."""

    user_id: str | None
    limit: int = 10
    offset: int = 0
    backend: str | None = None
    pending: bool | None = None
    program_id: str | None = None
    tags: Sequence[str] = ()
    session_id: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    descending: bool = True
    status: str | None = None
    include_mocks: bool = True  # False: leave out dry runs (jobs on mock backends)
