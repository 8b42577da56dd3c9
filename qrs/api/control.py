"""The test control API at ``/_qrs/``: scenarios, the job summary, the request journal, reset.

Registered only with ``QRS_CONTROL_API=1`` (absent otherwise: 404), and only for admins:
in key mode every caller without an admin key or token — none, a bad one, a user's —
gets 403. In open mode everyone is the shared admin, as on the rest of the API.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import Forbidden, InvalidInput, Unauthorized
from ..registry import get_registry
from ..store import JobQuery
from ..testkit import EXTENSION, Testkit
from ..testkit.scenario import ScenarioError, parse
from .common import iso, json_body

bp = Blueprint("control", __name__, url_prefix="/_qrs")

#: Jobs read per page when listing or resetting.
_PAGE = 1000


def _kit() -> Testkit:
    return current_app.extensions[EXTENSION]


@bp.before_request
def admin_only() -> None:
    auth = get_registry().auth
    try:
        user = auth.user_for_header(request.headers.get("Authorization"))
    except Unauthorized as exc:
        raise Forbidden(f"The control API needs an admin key or token: {exc.message}") from None
    if not user.admin:
        raise Forbidden(
            "The control API needs an admin key or token ('qrs keys create --user NAME --admin')."
        )


@bp.get("/scenario")
def read_scenario():
    """The scenario in force: unconsumed ``next_jobs``, faults with their uses left."""
    return jsonify(_kit().state.current())


@bp.put("/scenario")
def replace_scenario():
    """Replace the scenario (400 naming the bad field; the old one then stays)."""
    try:
        scenario = parse(json_body())
    except ScenarioError as exc:
        raise InvalidInput(str(exc)) from None
    reg = get_registry()
    unknown = sorted(
        name
        for name in scenario.backends
        if not any(c in name for c in "*?[") and not reg.metadata.exists(name)
    )
    if unknown:
        raise InvalidInput(
            f"Invalid scenario: backends: unknown backend(s) {', '.join(unknown)}; "
            "GET /backends lists them (for example 'fake_manila')."
        )
    if scenario.noise is not None and scenario.noise != reg.config.noise:
        runs = "with" if reg.config.noise else "without"
        raise InvalidInput(
            f"Invalid scenario: noise: this server runs {runs} noise, set when it starts "
            "(QRS_NOISE; the pytest plugin's qrs_noise ini option). Leave 'noise' out, or "
            "start the server with the setting you want."
        )
    _kit().state.replace(scenario)
    reg.runner.announce()  # a backend back online or a shorter delay: runners look again
    return jsonify(_kit().state.current())


@bp.post("/reset")
def reset():
    """Back to the start: the initial scenario, no journal, no jobs, no open sessions."""
    kit, store = _kit(), get_registry().store
    kit.state.reset()
    if kit.journal is not None:
        kit.journal.clear()
    while True:
        jobs, _ = store.list_jobs(JobQuery(user_id=None, limit=_PAGE))
        if not jobs:
            break
        for job in jobs:
            if not job.status.final:
                store.cancel(job.id, "Cancelled by a reset of the QRS test control API.")
            store.delete_job(job.id)
    for session in store.list_sessions(limit=_PAGE):
        if session.state.value != "closed":
            store.cancel_session(session.id, "Closed by a reset of the QRS test control API.")
    get_registry().runner.announce()
    return Response(status=204)


@bp.get("/jobs")
def jobs():
    """Every job, oldest first, with what the scenario did to it."""
    kit, store = _kit(), get_registry().store
    polls, fates = kit.state.polls(), kit.state.fates()
    listed: list[dict[str, Any]] = []
    while True:
        page, _ = store.list_jobs(
            JobQuery(user_id=None, limit=_PAGE, offset=len(listed), descending=False)
        )
        listed += [
            {
                "id": j.id,
                "program_id": j.program_id,
                "backend": j.backend,
                "status": j.status.value,
                "reason": j.reason,
                "reason_code": j.reason_code,
                "session_id": j.session_id,
                "user_id": j.user_id,
                "tags": j.tags,
                "created": iso(j.created),
                "attempts": j.attempts,
                "polls": polls.get(j.id, 0),
                "scenario": fates.get(j.id),
            }
            for j in page
        ]
        if len(page) < _PAGE:
            return jsonify({"jobs": listed})


@bp.get("/requests")
def requests_journal():
    """The last requests (``?limit=N``), oldest first; never bodies, headers or queries."""
    limit = request.args.get("limit", "")
    if limit and not limit.isdigit():
        raise InvalidInput(f"limit must be a positive integer, not {limit!r}.")
    journal = _kit().journal
    return jsonify({"requests": journal.entries(int(limit) if limit else None) if journal else []})
