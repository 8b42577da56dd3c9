"""Job submission: every check a new job must pass, in order, then the store.

``submit_job`` is ``POST /jobs`` without HTTP: the view parses the body (schema) and
answers; everything between — program and backend, session, queue and storage quotas,
tags, then the params (``submission_check``: the payload guard before decoding,
decoding, limits and instructions after it, in a memory-limited child for big jobs) — is
here, cheapest first, so a bad job is refused before any expensive decode. Nothing is
stored until every check has passed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .auth import User, can_see
from .errors import Conflict, InvalidInput, NotFound, TooManyRequests
from .quotas import check_storage_quota
from .states import PROGRAMS, Program, SessionState
from .store import Job, NewJob
from .validation import Limits

if TYPE_CHECKING:
    from .registry import Registry


def submit_job(
    registry: Registry, user: User, body: dict[str, Any], idempotency_key: str | None = None
) -> Job:
    """Check and store a job; ``body`` is the ``JobCreate`` schema's output.

    Raises a ``QRSError`` (4xx) naming what is wrong. With an ``idempotency_key``, the
    same user's second submission returns the first job instead of a new one.
    """
    config, metadata = registry.config, registry.metadata
    program_id, backend = body["program_id"], body["backend"]
    if program_id not in PROGRAMS:
        raise InvalidInput(
            f"Unknown program_id '{program_id}'; this server runs {', '.join(PROGRAMS)}."
        )
    device = metadata.get_backend(backend)  # 404 for an unknown backend
    metadata.check_calibration(backend, body["calibration_id"])  # one snapshot each
    dry_run = metadata.is_mock(backend)
    if dry_run and program_id != Program.EXECUTOR.value:
        raise InvalidInput(
            f"Backend '{backend}' is a dry-run backend: it runs only executor "
            "programs (run(..., dry_run=True)). Use "
            f"'{metadata.base_name(backend)}' for {program_id} jobs."
        )
    session_id = body["session_id"]
    if session_id:
        check_session(registry, user, session_id, backend)
    if registry.store.queue_depth(user.id) >= config.max_queue_per_user:
        raise TooManyRequests(
            f"You already have {config.max_queue_per_user} queued jobs "
            "(QRS_MAX_QUEUE_PER_USER); wait for some to finish.",
            headers={"Retry-After": "5"},
        )
    tags = body["tags"] or []
    if len(tags) > config.max_tags:
        raise InvalidInput(f"{len(tags)} tags; at most {config.max_tags} are allowed.")
    params_text = json.dumps(body["params"])
    check_storage_quota(registry.store, config, user.id, len(params_text))
    summary = registry.validator.validate(
        params_text,
        program_id,
        Limits.from_config(config, device),
        metadata.get_configuration(backend),
    )
    max_time = body["cost"] or summary.max_execution_time
    return registry.store.add_job(
        NewJob(
            user_id=user.id,
            program_id=program_id,
            backend=backend,
            params_text=params_text,
            session_id=session_id,
            tags=tags,
            log_level=body["log_level"],
            private=bool(body["private"]),
            max_execution_time=int(max_time) if max_time else None,
            num_pubs=summary.num_pubs,
            num_circuits=summary.num_circuits,
            width=summary.width,
            dry_run=dry_run,
            idempotency_key=idempotency_key,
        )
    )


def check_session(registry: Registry, user: User, session_id: str, backend: str) -> None:
    """A job may join only an open session of its caller, on the session's backend."""
    session = registry.store.get_session(session_id)
    if session is None or not can_see(user, session.user_id):
        raise NotFound(f"Session {session_id} was not found.")
    if session.state == SessionState.CLOSED or not session.accepting_jobs:
        why = f": {session.close_reason.rstrip('.')}" if session.close_reason else ""
        raise Conflict(
            f"Session {session_id} is closed and accepts no new jobs{why}. Open a new session."
        )
    if session.backend and session.backend != registry.metadata.base_name(backend):
        raise InvalidInput(f"Session {session_id} runs on {session.backend}, not {backend}.")
    if registry.store.session_job_count(session_id) >= registry.config.max_jobs_per_session:
        raise Conflict(
            f"Session {session_id} already has {registry.config.max_jobs_per_session} "
            "jobs (QRS_MAX_JOBS_PER_SESSION)."
        )
