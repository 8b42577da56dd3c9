"""Operator endpoints: liveness, readiness and Prometheus metrics.

None of them needs a token: load balancers, systemd and Prometheus call them. They
reveal no user's jobs, only counts.
"""

from __future__ import annotations

import logging
import os
import shutil

from flask import Blueprint, Response, jsonify

from .. import metrics as qrs_metrics
from ..registry import get_registry

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.after_app_request
def name_the_worker(response):
    """``X-QRS-Worker: <pid>`` on every answer: which gunicorn worker served it (operators
    and the multi-worker tests match it to job logs' ``host:pid:xxxx`` worker ids)."""
    response.headers["X-QRS-Worker"] = str(os.getpid())
    return response


@bp.get("/health")
def health():
    """Liveness: the process serves requests, with the data directory's disk use.

    Cheap on purpose (probed every few seconds): the directory's size is recomputed at
    most once a minute per worker (``Store.disk_usage_bytes``).
    """
    reg = get_registry()
    return jsonify(
        {
            "status": "ok",
            "executor": reg.runner.executor_name,
            "data_dir_bytes": reg.store.disk_usage_bytes(),
            "disk_free_bytes": shutil.disk_usage(reg.store.data_dir).free,
        }
    )


@bp.get("/ready")
def ready():
    """Readiness: the store answers, the executor is loaded, runner threads are up; else 503."""
    reg = get_registry()
    if reg.config.start_runner:
        reg.runner.start()  # as the first API request would; a no-op once running
    checks = {
        "store": False,
        "executor": reg.executor is not None,
        "runner": reg.runner.alive or not reg.config.start_runner,
    }
    try:
        checks["store"] = reg.store.ping()
    except Exception as exc:  # a locked or missing database is exactly what this reports
        # The error's type only: its text may name paths; the server log has it whole.
        log.error("readiness: the store does not answer: %s", exc)
        checks["store_error"] = type(exc).__name__
    ok = checks["store"] and checks["executor"] and checks["runner"]
    body = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "queue_depth": reg.store.queue_depth() if checks["store"] else None,
        "disk_free_bytes": shutil.disk_usage(reg.store.data_dir).free,
        "executor": reg.runner.executor_name,
        "runner_busy_threads": reg.runner.busy,
        "runner_threads": reg.config.executor_threads,
    }
    return jsonify(body), (200 if ok else 503)


@bp.get("/metrics")
def metrics():
    """Prometheus text format, summed over every worker process of this server."""
    body, content_type = qrs_metrics.exposition(get_registry().store)
    return Response(body, content_type=content_type)
