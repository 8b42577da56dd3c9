"""Job submission: every check a new job must pass, in order, then the store.

``submit_job`` is ``POST /jobs`` without HTTP: the view parses the body (schema) and
answers; everything between — program and backend, session, queue quota, the payload
guard before decoding, decoding, limits and instructions after it, tags — is here,
cheapest first, so a bad job is refused before any expensive decode. Nothing is stored
until every check has passed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import schemas
from .auth import User, can_see
from .circuits import check_instructions, circuit_width, pub_circuit
from .codec import decode_params
from .errors import Conflict, InvalidInput, NotFound, TooManyRequests
from .executors.legacy_options import check_options
from .noise_learning import check_request, decode_request
from .payload_guard import check_params
from .quantum_program import check_program, decode_program
from .states import PROGRAMS, Program, SessionState
from .store import Job, NewJob
from .validation import Limits, validate_pubs

if TYPE_CHECKING:
    from .registry import Registry


def submit_job(registry: "Registry", user: User, body: dict[str, Any],
               idempotency_key: str | None = None) -> Job:
    """Check and store a job; ``body`` is the ``JobCreate`` schema's output.

    Raises a ``QRSError`` (4xx) naming what is wrong. With an ``idempotency_key``, the
    same user's second submission returns the first job instead of a new one.
    """
    config, metadata = registry.config, registry.metadata
    program_id, backend = body["program_id"], body["backend"]
    if program_id not in PROGRAMS:
        raise InvalidInput(f"Unknown program_id '{program_id}'; this server runs "
                           f"{', '.join(PROGRAMS)}.")
    device = metadata.get_backend(backend)  # 404 for an unknown backend
    metadata.check_calibration(backend, body["calibration_id"])  # one snapshot each
    dry_run = metadata.is_mock(backend)
    if dry_run and program_id != Program.EXECUTOR.value:
        raise InvalidInput(f"Backend '{backend}' is a dry-run backend: it runs only executor "
                           "programs (run(..., dry_run=True)). Use "
                           f"'{metadata.base_name(backend)}' for {program_id} jobs.")
    session_id = body["session_id"]
    if session_id:
        check_session(registry, user, session_id, backend)
    if registry.store.queue_depth(user.id) >= config.max_queue_per_user:
        raise TooManyRequests(
            f"You already have {config.max_queue_per_user} queued jobs "
            "(QRS_MAX_QUEUE_PER_USER); wait for some to finish.", headers={"Retry-After": "5"})
    tags = body["tags"] or []
    if len(tags) > config.max_tags:
        raise InvalidInput(f"{len(tags)} tags; at most {config.max_tags} are allowed.")
    params = body["params"]
    limits = Limits.from_config(config, device)
    check_params(params, limits)
    if program_id == Program.EXECUTOR.value:
        program = decode_program(params)
        circuits = check_program(program, limits)
        num_pubs, options, width = len(program.program.items), {}, 0
    elif program_id == Program.NOISE_LEARNER.value:
        learning = decode_request(params, device)
        check_request(learning, device, limits)
        num_pubs, options, width, circuits = len(learning.layers), {}, 0, len(learning.layers)
    else:
        decoded = decode_params(params, program_id)
        schemas.load(schemas.PrimitiveOptions, decoded.options, "params.options")
        check_options(program_id, decoded.options, metadata.get_configuration(backend))
        circuits = validate_pubs(program_id, decoded.pubs, decoded.options, limits)
        check_instructions((pub_circuit(pub) for pub in decoded.pubs), limits.operations,
                           backend, "params.pubs")
        num_pubs, options = len(decoded.pubs), decoded.options
        width = circuit_width(decoded.pubs)
    max_time = body["cost"] or options.get("max_execution_time")
    return registry.store.add_job(NewJob(
        user_id=user.id, program_id=program_id, backend=backend,
        params_text=json.dumps(params), session_id=session_id, tags=tags,
        log_level=body["log_level"], private=bool(body["private"]),
        max_execution_time=int(max_time) if max_time else None, num_pubs=num_pubs,
        num_circuits=circuits, width=width, dry_run=dry_run, idempotency_key=idempotency_key))


def check_session(registry: "Registry", user: User, session_id: str, backend: str) -> None:
    """A job may join only an open session of its caller, on the session's backend."""
    session = registry.store.get_session(session_id)
    if session is None or not can_see(user, session.user_id):
        raise NotFound(f"Session {session_id} was not found.")
    if session.state == SessionState.CLOSED or not session.accepting_jobs:
        why = f": {session.close_reason.rstrip('.')}" if session.close_reason else ""
        raise Conflict(f"Session {session_id} is closed and accepts no new jobs{why}. "
                       "Open a new session.")
    if session.backend and session.backend != registry.metadata.base_name(backend):
        raise InvalidInput(f"Session {session_id} runs on {session.backend}, not {backend}.")
    if registry.store.session_job_count(session_id) >= registry.config.max_jobs_per_session:
        raise Conflict(f"Session {session_id} already has {registry.config.max_jobs_per_session} "
                       "jobs (QRS_MAX_JOBS_PER_SESSION).")
