"""Sessions and batches: create, read, close, cancel, expire.

State machine ``open → active → inactive → closed`` as IBM's service runs it: a session
turns ``active`` when one of its jobs starts (``transition``), ``inactive`` when idle past
its interactive TTL, and ``closed`` once it stopped accepting jobs and none is pending,
or at once when it reaches its maximum TTL or is cancelled.
"""

from __future__ import annotations

import time

from ..states import PENDING_JOB_STATES, JobStatus, ReasonCode, SessionMode, SessionState
from .jobs import JobRecords
from .models import Session, new_id
from .transition import settle_session, status_in, stored_plus, transition


class SessionRecords(JobRecords):
    """The session half of ``Store`` (a mixin: ``Store`` supplies ``db`` and ``payloads``)."""

    def add_session(
        self,
        user_id: str,
        mode: SessionMode,
        backend: str | None,
        max_ttl: int,
        interactive_ttl: int,
        now: float | None = None,
    ) -> Session:
        """Open a session (or batch); it accepts jobs until closed."""
        session_id = new_id()
        with self.db.tx() as db:
            db.execute(
                "INSERT INTO sessions (id, user_id, mode, backend, state, accepting_jobs, max_ttl, "
                "interactive_ttl, created) VALUES (?,?,?,?,?,1,?,?,?)",
                (
                    session_id,
                    user_id,
                    mode.value,
                    backend,
                    SessionState.OPEN.value,
                    max_ttl,
                    interactive_ttl,
                    time.time() if now is None else now,
                ),
            )
        session = self.get_session(session_id)
        assert session is not None  # just written
        return session

    def get_session(self, session_id: str) -> Session | None:
        rows = self.db.read("SELECT * FROM sessions WHERE id=?", (session_id,))
        return Session.from_row(rows[0]) if rows else None

    def list_sessions(self, user_id: str | None = None, limit: int = 50) -> list[Session]:
        """The newest sessions, of one user or of everyone (the dashboard)."""
        where, args = ("WHERE user_id=?", [user_id]) if user_id is not None else ("", [])
        rows = self.db.read(
            f"SELECT * FROM sessions {where} ORDER BY created DESC LIMIT ?", (*args, limit)
        )
        return [Session.from_row(r) for r in rows]

    def session_usage_seconds(self, session_id: str) -> float:
        return self.db.scalar(
            "SELECT COALESCE(SUM(usage_seconds),0) FROM jobs WHERE session_id=?", (session_id,)
        )

    def session_job_count(self, session_id: str) -> int:
        return self.db.scalar("SELECT COUNT(*) FROM jobs WHERE session_id=?", (session_id,))

    def close_session(self, session_id: str, now: float | None = None) -> None:
        """Stop accepting jobs; the session closes once its queued jobs have run."""
        now = time.time() if now is None else now
        with self.db.tx() as db:
            db.execute("UPDATE sessions SET accepting_jobs=0 WHERE id=?", (session_id,))
            settle_session(db, session_id, now)

    def open_session_count(self, user_id: str) -> int:
        """Sessions and batches of one user that are not closed (a quota)."""
        return self.db.scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_id=? AND state!=?",
            (user_id, SessionState.CLOSED.value),
        )

    def cancel_session(
        self, session_id: str, reason: str, now: float | None = None, running_too: bool = True
    ) -> list[str]:
        """Cancel the session's pending jobs (only the Queued ones unless ``running_too``)
        and close it; returns the cancelled job ids."""
        now = time.time() if now is None else now
        sources = PENDING_JOB_STATES if running_too else {JobStatus.QUEUED}
        sql, values = status_in(sources)
        with self.db.tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM jobs WHERE session_id=? AND {sql}", (session_id, *values)
                )
            ]
            ids = transition(
                db,
                ids,
                JobStatus.CANCELLED,
                sources,
                f"Job cancelled: {reason}",
                now=now,
                reason=reason,
                reason_code=int(ReasonCode.SESSION_CLOSED),
                finished_at=now,
                heartbeat=None,
                stored_bytes=stored_plus(len(reason.encode())),
            )
            db.execute(
                "UPDATE sessions SET state=?, accepting_jobs=0, "
                "closed_at=COALESCE(closed_at, ?), close_reason=COALESCE(close_reason, ?) "
                "WHERE id=?",
                (SessionState.CLOSED.value, now, reason, session_id),
            )
        for job_id in ids:
            self.payloads.write_result(job_id, reason)
        self._forget_private_params(ids)
        return ids

    def expire_sessions(self, now: float | None = None) -> list[str]:
        """Close sessions past ``max_ttl``; deactivate those idle past ``interactive_ttl``.

        A session reaching ``max_ttl`` (from its first job's start; from its creation while
        no job has started) closes at once and its queued jobs are cancelled with the
        reason, while a running one completes, as IBM's service does; returns those
        sessions' ids. An active session with no pending job for longer than
        ``interactive_ttl`` goes ``inactive`` (the client's "Pending"): it still accepts
        jobs, which queue like any other until one starts and reactivates it.
        """
        now = time.time() if now is None else now
        rows = self.db.read(
            "SELECT id, max_ttl, created, activated_at FROM sessions WHERE state!=?",
            (SessionState.CLOSED.value,),
        )
        expired = []
        for sid, max_ttl, created, activated in rows:
            if now - (activated or created) > max_ttl:
                self.cancel_session(
                    sid,
                    f"Session {sid} reached its maximum time to live ({max_ttl} s).",
                    now,
                    running_too=False,
                )
                expired.append(sid)
        pending_sql, pending = status_in(PENDING_JOB_STATES, "jobs.status")
        with self.db.tx() as db:
            db.execute(
                "UPDATE sessions SET state=? WHERE state=? "
                "AND COALESCE(last_job_completed, activated_at) < ? - interactive_ttl "
                "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id=sessions.id "
                f"AND {pending_sql})",
                (SessionState.INACTIVE.value, SessionState.ACTIVE.value, now, *pending),
            )
        return expired
