"""Session and batch endpoints: open, read, close (PATCH), cancel (DELETE .../close)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from .. import schemas
from ..errors import InvalidInput
from ..quotas import check_session_quota
from ..registry import get_registry
from ..states import SessionMode
from ..store import Session
from .common import current_user, get_session, iso, json_body

bp = Blueprint("sessions", __name__)


def session_json(session: Session) -> dict[str, Any]:
    """The session as the client's ``Session.details()`` reads it."""
    elapsed = get_registry().store.session_usage_seconds(session.id)
    return {
        "id": session.id,
        "backend_name": session.backend,
        "mode": session.mode.value,
        "state": session.state.value,
        "accepting_jobs": session.accepting_jobs,
        "max_ttl": session.max_ttl,
        "interactive_ttl": session.interactive_ttl,
        "active_ttl": session.max_ttl,
        "started_at": iso(session.created),
        "activated_at": iso(session.activated_at),
        "closed_at": iso(session.closed_at),
        "last_job_started": iso(session.last_job_started),
        "last_job_completed": iso(session.last_job_completed),
        "elapsed_time": round(elapsed, 6),
        "usage_time": round(elapsed, 6),
        "close_reason": session.close_reason,
        "user_id": session.user_id,
        "timestamps": [],
    }


@bp.post("/sessions")
def create_session():
    """Open a session or batch; ``max_ttl`` defaults to, and may not exceed, the server's."""
    reg = get_registry()
    body = schemas.load(schemas.SessionCreate(), json_body())
    backend = body["backend"]
    if backend:
        reg.metadata.get_backend(backend)  # 404 for an unknown backend
    max_ttl = body["max_ttl"] or reg.config.session_max_ttl
    if max_ttl > reg.config.session_max_ttl:
        raise InvalidInput(
            f"max_ttl {max_ttl} s is above this server's limit of "
            f"{reg.config.session_max_ttl} s (QRS_SESSION_MAX_TTL)."
        )
    check_session_quota(reg.store, reg.config, current_user().id)
    session = reg.store.add_session(
        current_user().id,
        SessionMode(body["mode"]),
        backend,
        max_ttl,
        reg.config.session_interactive_ttl,
    )
    return jsonify(session_json(session))


@bp.get("/sessions/<session_id>")
def read_session(session_id: str):
    """A session's state and details (``Session.details()``)."""
    return jsonify(session_json(get_session(session_id)))


@bp.patch("/sessions/<session_id>")
def update_session(session_id: str):
    """``accepting_jobs: false`` closes the session to new jobs; reopening is refused."""
    session = get_session(session_id)
    body = schemas.load(schemas.SessionPatch(), json_body())
    if body["accepting_jobs"]:
        raise InvalidInput("A session cannot be reopened once it stops accepting jobs.")
    get_registry().store.close_session(session.id)
    return Response(status=204)


@bp.delete("/sessions/<session_id>/close")
def cancel_session(session_id: str):
    """Cancel the session and its queued jobs (the client's ``Session.cancel()``)."""
    session = get_session(session_id)
    get_registry().store.cancel_session(session.id, f"Session {session.id} was cancelled.")
    return Response(status=204)
