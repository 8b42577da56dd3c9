"""Job endpoints (``/jobs`` and ``/jobs/<id>/*``) and the instance usage endpoints."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .. import metrics as qrs_metrics
from .. import schemas
from ..errors import Conflict, Gone, InvalidInput
from ..registry import get_registry
from ..states import JobStatus
from ..store import Job, JobQuery
from ..submission import submit_job
from .common import current_user, get_job, iso, json_body, owner_filter

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
        "usage": {
            "seconds": round(job.usage_seconds, 6),
            "quantum_seconds": round(job.usage_seconds, 6),
        },
        "estimated_running_time_seconds": None,
        "runtime": "",
    }


def _json_with_params(body: dict[str, Any], params_text: str) -> Response:
    """Splice the stored params text into the answer without decoding it."""
    text = json.dumps(body)[:-1] + ', "params": ' + params_text + "}"
    return Response(text, mimetype="application/json")


@bp.post("/jobs")
def create_job():
    """Submit a job: the checks and the store are ``submission.submit_job``'s."""
    reg = get_registry()
    body = schemas.load(schemas.JobCreate, json_body())
    job = submit_job(reg, current_user(), body, request.headers.get("Idempotency-Key"))
    reg.runner.announce()
    qrs_metrics.count_submitted(job.program_id, job.backend)
    return jsonify(
        {
            "id": job.id,
            "backend": job.backend,
            "session_id": job.session_id,
            "private": job.private,
            "status": job.status.value,
            "created": iso(job.created),
        }
    )


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
            raise Gone(
                f"The result of private job {job_id} was already read; a private "
                "job's result can be read only once."
            )
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
    return jsonify(
        {
            "timestamps": {
                "created": iso(job.created),
                "running": iso(job.running_at),
                "finished": iso(job.finished_at),
            },
            "bss": {"seconds": round(job.usage_seconds, 6)},
            "usage": {
                "quantum_seconds": round(job.usage_seconds, 6),
                "seconds": round(job.usage_seconds, 6),
                "qpu_charge_time_seconds": round(job.usage_seconds, 6),
                "status": "final" if final else "pending",
            },
            "qiskit_version": qiskit.__version__,
            "executor": get_registry().runner.executor_name,
            "num_pubs": job.num_pubs,
            "num_circuits": job.num_circuits,
            "attempts": job.attempts,
        }
    )


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
    jobs, count = get_registry().store.list_jobs(
        JobQuery(
            user_id=owner_filter(),
            limit=query["limit"],
            offset=query["offset"],
            backend=query["backend"],
            pending=query["pending"],
            program_id=query["program"],
            tags=query["tags"],
            session_id=query["session_id"],
            created_after=query["created_after"].timestamp() if query["created_after"] else None,
            created_before=query["created_before"].timestamp()
            if query["created_before"]
            else None,
            descending=query["sort"].upper() == "DESC",
            include_mocks=query["include_mocks"],
        )
    )
    # The client pages until it holds ``count - skip`` jobs, and its offset is always
    # ``skip`` plus what it holds: a count below the offset (a skip past the end, or jobs
    # deleted while it pages) would never match and its loop would never end.
    count = max(count, query["offset"])
    return jsonify(
        {
            "jobs": [job_json(j) for j in jobs],
            "count": count,
            "limit": query["limit"],
            "offset": query["offset"],
        }
    )


@bp.get("/instances/usage")
def usage():
    used = get_registry().store.usage_seconds(owner_filter())
    return jsonify(
        {
            "usage_consumed_seconds": used,
            "usage_limit_seconds": None,
            "usage_limit_reached": False,
            "usage_remaining_seconds": None,
            "usage_allocation_seconds": None,
        }
    )


@bp.get("/instances/configuration")
def instance_configuration():
    return jsonify({"qctrl_enabled": False, "instance": "qrs"})
