"""Job endpoints (``/jobs`` and ``/jobs/<id>/*``) and the instance usage endpoints."""

from __future__ import annotations

import json
import platform
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .. import metrics as qrs_metrics
from .. import schemas
from ..codec import (PROGRAMS, PubLimits, check_instructions, circuit_width, decode_params,
                     validate_pubs)
from ..errors import Conflict, Gone, InvalidInput, TooManyRequests
from ..quantum_program import EXECUTOR_PROGRAM, check_program, decode_program
from ..payload_guard import PayloadLimits, check_params
from ..registry import get_registry
from ..states import JobStatus, SessionState
from ..store import Job, JobQuery, NewJob
from .common import current_user, get_job, get_session, iso, json_body, owner_filter

bp = Blueprint("jobs", __name__)


def job_json(job: Job) -> dict[str, Any]:
    """The job as ``GET /jobs/<id>`` shows it (without params)."""
    state: dict[str, Any] = {"status": job.status.value}
    if job.reason:
        state["reason"] = job.reason
    if job.reason_code:
        state["reason_code"] = job.reason_code
    return {
        "id": job.id,
        "backend": job.backend,
        "status": job.status.value,
        "state": state,
        "created": iso(job.created),
        "program": {"id": job.program_id},
        "session_id": job.session_id,
        "tags": job.tags,
        "private": job.private,
        "cost": job.max_execution_time,
        "user_id": job.user_id,
        "usage": {"seconds": round(job.usage_seconds, 6),
                  "quantum_seconds": round(job.usage_seconds, 6)},
        "estimated_running_time_seconds": None,
        "runtime": "",
    }


def _json_with_params(body: dict[str, Any], params_text: str) -> Response:
    """Splice the stored params text into the answer without decoding it."""
    text = json.dumps(body)[:-1] + ', "params": ' + params_text + "}"
    return Response(text, mimetype="application/json")


@bp.post("/jobs")
def create_job():
    reg = get_registry()
    body = schemas.load(schemas.JobCreate, json_body())
    user = current_user()
    program_id, backend = body["program_id"], body["backend"]
    if program_id not in PROGRAMS:
        raise InvalidInput(f"Unknown program_id '{program_id}'; this server runs "
                           f"{', '.join(PROGRAMS)}.")
    qubits = reg.metadata.num_qubits(backend)  # 404 for an unknown backend
    reg.metadata.check_calibration(backend, body["calibration_id"])  # one snapshot each
    if reg.metadata.is_mock(backend) and program_id != EXECUTOR_PROGRAM:
        raise InvalidInput(f"Backend '{backend}' is a dry-run backend: it runs only executor "
                           "programs (run(..., dry_run=True)). Use "
                           f"'{reg.metadata.base_name(backend)}' for {program_id} jobs.")
    session_id = body["session_id"]
    if session_id:
        _check_session(session_id, backend)
    if reg.store.queue_depth(user.id) >= reg.config.max_queue_per_user:
        raise TooManyRequests(
            f"You already have {reg.config.max_queue_per_user} queued jobs "
            "(QRS_MAX_QUEUE_PER_USER); wait for some to finish.", headers={"Retry-After": "5"})
    params = body["params"]
    cfg = reg.config
    limits = PubLimits(cfg.max_pubs, cfg.max_shots, cfg.max_pub_shots,
                       cfg.max_parameter_bindings, cfg.max_observables)
    check_params(params, PayloadLimits(cfg.max_decoded_mb * 2**20, qubits, cfg.max_clbits))
    if program_id == EXECUTOR_PROGRAM:
        program = decode_program(params)
        circuits = check_program(program, reg.metadata.get_backend(backend), limits)
        num_pubs, options, width = len(program.program.items), {}, 0
    else:
        decoded = decode_params(params, program_id)
        schemas.load(schemas.PrimitiveOptions, decoded.options, "params.options")
        circuits = validate_pubs(
            program_id, decoded.pubs, decoded.options, qubits, limits,
            backend_max_shots=reg.metadata.get_configuration(backend).get("max_shots"))
        check_instructions(decoded.pubs, reg.metadata.operation_names(backend), backend)
        num_pubs, options = len(decoded.pubs), decoded.options
        width = circuit_width(decoded.pubs)
    tags = body["tags"] or []
    if len(tags) > cfg.max_tags:
        raise InvalidInput(f"{len(tags)} tags; at most {cfg.max_tags} are allowed.")
    max_time = body["cost"] or options.get("max_execution_time")
    job = reg.store.add_job(NewJob(
        user_id=user.id, program_id=program_id, backend=backend,
        params_text=json.dumps(params), session_id=session_id, tags=tags,
        log_level=body["log_level"], private=bool(body["private"]),
        max_execution_time=int(max_time) if max_time else None, num_pubs=num_pubs,
        num_circuits=circuits, width=width, dry_run=reg.metadata.is_mock(backend),
        idempotency_key=request.headers.get("Idempotency-Key")))
    reg.runner.announce()
    qrs_metrics.count_submitted(program_id, backend)
    return jsonify({"id": job.id, "backend": job.backend, "session_id": job.session_id,
                    "private": job.private, "status": job.status.value,
                    "created": iso(job.created)})


def _check_session(session_id: str, backend: str) -> None:
    """A job may join only an open session of its caller, on the session's backend."""
    reg = get_registry()
    session = get_session(session_id)
    if session.state == SessionState.CLOSED or not session.accepting_jobs:
        why = f": {session.close_reason.rstrip('.')}" if session.close_reason else ""
        raise Conflict(f"Session {session_id} is closed and accepts no new jobs{why}. "
                       "Open a new session.")
    if session.backend and session.backend != reg.metadata.base_name(backend):
        raise InvalidInput(f"Session {session_id} runs on {session.backend}, not {backend}.")
    if reg.store.session_job_count(session_id) >= reg.config.max_jobs_per_session:
        raise Conflict(f"Session {session_id} already has {reg.config.max_jobs_per_session} "
                       "jobs (QRS_MAX_JOBS_PER_SESSION).")


@bp.get("/jobs/<job_id>")
def read_job(job_id: str):
    query = schemas.load(schemas.JobGetQuery, request.args, "query")
    reg = get_registry()
    job = get_job(job_id)
    if not job.status.final and reg.config.status_wait_ms > 0:
        job = reg.runner.wait_final(job_id, reg.config.status_wait_ms / 1000) or job
    if query["exclude_params"] or job.private:  # a private job's inputs are never shown
        return jsonify(job_json(job))
    return _json_with_params(job_json(job), reg.store.job_params(job_id))


@bp.get("/jobs/<job_id>/results")
def results(job_id: str):
    job = get_job(job_id)
    if not job.status.final:
        raise Conflict(f"Job {job_id} is {job.status.value}; results exist once it has finished.")
    store = get_registry().store
    if job.private and job.status == JobStatus.COMPLETED:
        text = store.take_result(job_id)  # served once, then deleted
        if text is None:
            raise Gone(f"The result of private job {job_id} was already read; a private "
                       "job's result can be read only once.")
    else:
        text = store.job_result(job_id)
    if text is None:
        text = job.reason or ""
    return Response(text, mimetype="application/json" if text.startswith("{") else "text/plain")


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    job = get_job(job_id)
    store = get_registry().store
    if not store.cancel(job.id):
        current = store.get_job(job_id)  # None if it was deleted meanwhile
        state = current.status.value if current else "deleted"
        raise Conflict(f"Job {job_id} is already {state} and cannot be cancelled.")
    qrs_metrics.count_cancelled(job.program_id, job.backend)
    return Response(status=204)


@bp.delete("/jobs/<job_id>")
def delete(job_id: str):
    job = get_job(job_id)
    get_registry().store.delete_job(job.id)
    return Response(status=204)


@bp.get("/jobs/<job_id>/logs")
def logs(job_id: str):
    job = get_job(job_id)
    lines = [f"{iso(ts)} {message}" for ts, message in get_registry().store.job_logs(job.id)]
    return Response("\n".join(lines) + "\n", mimetype="text/plain")


@bp.get("/jobs/<job_id>/metrics")
def metrics(job_id: str):
    import qiskit

    job = get_job(job_id)
    final = job.status.final
    return jsonify({
        "timestamps": {"created": iso(job.created), "running": iso(job.running_at),
                       "finished": iso(job.finished_at)},
        "bss": {"seconds": round(job.usage_seconds, 6)},
        "usage": {"quantum_seconds": round(job.usage_seconds, 6),
                  "seconds": round(job.usage_seconds, 6),
                  "qpu_charge_time_seconds": round(job.usage_seconds, 6),
                  "status": "final" if final else "pending"},
        "qiskit_version": qiskit.__version__,
        "executor": get_registry().runner.executor_name,
        "caller": request.headers.get("User-Agent", ""),
        "num_pubs": job.num_pubs,
        "num_circuits": job.num_circuits,
        "attempts": job.attempts,
        "server": platform.node(),
    })


@bp.put("/jobs/<job_id>/tags")
def update_tags(job_id: str):
    job = get_job(job_id)
    body = schemas.load(schemas.TagsUpdate, json_body())
    if len(body["tags"]) > get_registry().config.max_tags:
        raise InvalidInput(f"At most {get_registry().config.max_tags} tags are allowed.")
    get_registry().store.set_tags(job.id, body["tags"])
    return Response(status=204)


@bp.get("/jobs")
def list_jobs():
    args = request.args.to_dict(flat=True)
    if "tags" in request.args:
        args["tags"] = request.args.getlist("tags")
    query = schemas.load(schemas.JobsQuery, args, "query")
    jobs, count = get_registry().store.list_jobs(JobQuery(
        user_id=owner_filter(), limit=query["limit"], offset=query["offset"],
        backend=query["backend"], pending=query["pending"], program_id=query["program"],
        tags=query["tags"], session_id=query["session_id"],
        created_after=query["created_after"].timestamp() if query["created_after"] else None,
        created_before=query["created_before"].timestamp() if query["created_before"] else None,
        descending=query["sort"].upper() == "DESC", include_mocks=query["include_mocks"]))
    # The client pages until it holds ``count - skip`` jobs, and its offset is always
    # ``skip`` plus what it holds: a count below the offset (a skip past the end, or jobs
    # deleted while it pages) would never match and its loop would never end.
    count = max(count, query["offset"])
    return jsonify({"jobs": [job_json(j) for j in jobs], "count": count,
                    "limit": query["limit"], "offset": query["offset"]})


@bp.get("/instances/usage")
def usage():
    used = get_registry().store.usage_seconds(owner_filter())
    return jsonify({"usage_consumed_seconds": used, "usage_limit_seconds": None,
                    "usage_limit_reached": False, "usage_remaining_seconds": None,
                    "usage_allocation_seconds": None})


@bp.get("/instances/configuration")
def instance_configuration():
    return jsonify({"qctrl_enabled": False, "instance": "qrs"})
