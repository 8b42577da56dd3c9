"""The one way a job changes state: ``transition`` (UPDATE, log line, session bookkeeping).

Every status change — claim, finish, fail, cancel, lease recovery, release, a session's
cancel — goes through here inside the caller's write transaction, so the rules hold for
all of them alike: the UPDATE is conditional on the job's current status (a job cancelled
meanwhile is not finished by a late result), each changed job gets one log line, and the
job's session learns that a job started or ended.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..states import FINAL_JOB_STATES, PENDING_JOB_STATES, JobStatus, SessionState
from .db import marks

#: Columns a transition may set besides ``status``.
_COLUMNS = frozenset(
    {
        "reason",
        "reason_code",
        "running_at",
        "finished_at",
        "claimed_by",
        "heartbeat",
        "attempts",
        "usage_seconds",
        "stored_bytes",
    }
)
#: Ids per statement (SQLite allows 32766 variables; a session may hold 100,000 jobs).
_CHUNK = 500


@dataclass(frozen=True)
class Sql:
    """A column value SQLite computes from the row (``attempts+1``), not a parameter."""

    text: str


def stored_plus(nbytes: int) -> Sql:
    """``stored_bytes`` grown by a result file of ``nbytes`` (an int, never text)."""
    return Sql(f"stored_bytes+{int(nbytes)}")


def transition(
    db: sqlite3.Connection,
    ids: str | Sequence[str],
    to: JobStatus,
    allowed_from: Iterable[JobStatus],
    log_line: str,
    *,
    now: float,
    worker: str | None = None,
    **columns: Any,
) -> list[str]:
    """Move the jobs ``ids`` that are in one of ``allowed_from`` to ``to``.

    ``worker`` restricts it to jobs that worker claimed; ``columns`` are set with the
    status (values are parameters, ``Sql`` values expressions). Returns the ids that
    changed, in the order given; the others were in another state and are left alone.
    """
    ids = [ids] if isinstance(ids, str) else list(ids)
    unknown = set(columns) - _COLUMNS
    if unknown:
        raise ValueError(f"transition cannot set {sorted(unknown)}")
    sets, values = ["status=?"], [to.value]
    for name, value in columns.items():
        if isinstance(value, Sql):
            sets.append(f"{name}={value.text}")
        else:
            sets.append(f"{name}=?")
            values.append(value)
    condition, sources = status_in(allowed_from)
    if worker:
        condition += " AND claimed_by=?"
    changed: dict[str, str | None] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = db.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id IN ({marks(chunk)}) AND {condition} "
            "RETURNING id, session_id",
            [*values, *chunk, *sources, *([worker] if worker else [])],
        ).fetchall()
        changed.update((row[0], row[1]) for row in rows)
    done = [job_id for job_id in ids if job_id in changed]
    db.executemany(
        "INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
        [(job_id, now, log_line) for job_id in done],
    )
    for session_id in {sid for job_id in done if (sid := changed[job_id]) is not None}:
        if to == JobStatus.RUNNING:
            db.execute(
                "UPDATE sessions SET state=?, activated_at=COALESCE(activated_at, ?), "
                "last_job_started=? WHERE id=? AND state!=?",
                (SessionState.ACTIVE.value, now, now, session_id, SessionState.CLOSED.value),
            )
        elif to in FINAL_JOB_STATES:
            db.execute("UPDATE sessions SET last_job_completed=? WHERE id=?", (now, session_id))
            settle_session(db, session_id, now)
    return done


def settle_session(db: sqlite3.Connection, session_id: str, now: float) -> None:
    """A session that stopped accepting jobs closes once none is pending.

    One still accepting jobs keeps its state: an ``active`` one (whose next job goes
    first) stays so until its interactive TTL runs out (``expire_sessions``).
    """
    pending_sql, pending = status_in(PENDING_JOB_STATES)
    count = db.execute(
        f"SELECT COUNT(*) FROM jobs WHERE session_id=? AND {pending_sql}", (session_id, *pending)
    ).fetchone()[0]
    if not count:
        db.execute(
            "UPDATE sessions SET state=?, closed_at=? WHERE id=? AND accepting_jobs=0 "
            "AND state!=?",
            (SessionState.CLOSED.value, now, session_id, SessionState.CLOSED.value),
        )


def status_in(statuses: Iterable[JobStatus], column: str = "status") -> tuple[str, list[str]]:
    """``status IN (?,?)`` and its parameters: statuses are never spelled in SQL text."""
    values = sorted(status.value for status in statuses)
    return f"{column} IN ({marks(values)})", values
