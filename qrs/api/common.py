"""Helpers every blueprint uses: the caller, visibility checks, wire formats."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from flask import g, request
from werkzeug.exceptions import UnsupportedMediaType

from ..auth import User, can_see
from ..errors import InvalidInput, NotFound
from ..registry import get_registry
from ..store import Job, Session


def authenticate() -> None:
    """``before_request`` of the API blueprints: who is calling (401 if nobody valid)."""
    reg = get_registry()
    g.user = reg.auth.user_for_header(request.headers.get("Authorization"))
    if reg.config.start_runner:
        reg.runner.start()


def json_body() -> Any:
    """The request's JSON body, or a 4xx saying why it is not one.

    Parsed here rather than with ``request.get_json`` so the message names the parse
    error (Flask hides it outside debug mode) and a body nested deeper than the parser's
    recursion allows is a 400 rather than a ``RecursionError`` (a 500).
    """
    if not request.is_json:
        raise UnsupportedMediaType(
            "Send the request body as JSON (Content-Type: application/json)."
        )
    try:
        return json.loads(request.get_data())
    except RecursionError:
        raise InvalidInput("The request body is nested too deeply to parse.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidInput(f"The request body is not valid JSON: {exc}.") from None


def current_user() -> User:
    """The caller ``authenticate`` found for this request."""
    return g.user


def owner_filter() -> str | None:
    """The user id whose rows the caller may see; ``None`` (everyone's) for admins."""
    user = current_user()
    return None if user.admin else user.id


def get_job(job_id: str) -> Job:
    """The job if it exists and the caller may see it; 404 otherwise (others' jobs too)."""
    job = get_registry().store.get_job(job_id)
    if job is None or not can_see(current_user(), job.user_id):
        raise NotFound(f"Job {job_id} was not found.")
    return job


def get_session(session_id: str) -> Session:
    """The session if it exists and the caller may see it; 404 otherwise (others' too)."""
    session = get_registry().store.get_session(session_id)
    if session is None or not can_see(current_user(), session.user_id):
        raise NotFound(f"Session {session_id} was not found.")
    return session


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO 8601 UTC with a ``Z``, as IBM's API writes timestamps."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")
