"""Helpers every blueprint uses: the caller, visibility checks, wire formats."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import g, request

from ..auth import User
from ..errors import NotFound
from ..registry import get_registry
from ..store import Job, Session


def authenticate() -> None:
    """``before_request`` of the API blueprints: who is calling (401 if nobody valid)."""
    reg = get_registry()
    g.user = reg.auth.user_for_header(request.headers.get("Authorization"))
    if reg.config.start_runner:
        reg.runner.start()


def current_user() -> User:
    return g.user


def owner_filter() -> str | None:
    """The user id whose rows the caller may see; ``None`` (everyone's) for admins."""
    user = current_user()
    return None if user.admin else user.id


def get_job(job_id: str) -> Job:
    """The job if it exists and the caller may see it; 404 otherwise (others' jobs too)."""
    job = get_registry().store.get_job(job_id)
    if job is None or (owner_filter() is not None and job.user_id != current_user().id):
        raise NotFound(f"Job {job_id} was not found.")
    return job


def get_session(session_id: str) -> Session:
    session = get_registry().store.get_session(session_id)
    if session is None or (owner_filter() is not None and session.user_id != current_user().id):
        raise NotFound(f"Session {session_id} was not found.")
    return session


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO 8601 UTC with a ``Z``, as IBM's API writes timestamps."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")
