"""Liveness and readiness for load balancers, systemd and operators."""

from __future__ import annotations

import os
import shutil

from flask import Blueprint, jsonify

from ..registry import get_registry

bp = Blueprint("health", __name__)


@bp.after_app_request
def name_the_worker(response):
    """``X-QRS-Worker: <pid>`` on every answer: which gunicorn worker served it (operators
    and the multi-worker tests match it to job logs' ``host:pid:xxxx`` worker ids)."""
    response.headers["X-QRS-Worker"] = str(os.getpid())
    return response


@bp.get("/health")
def health():
    """Liveness: the process serves requests; includes the data directory's disk use
    (recomputed at most once a minute per worker, see ``Store.disk_usage_bytes``)."""
    reg = get_registry()
    disk = shutil.disk_usage(reg.store.data_dir)
    return jsonify({"status": "ok", "executor": reg.executor.name,
                    "data_dir_bytes": reg.store.disk_usage_bytes(),
                    "disk_free_bytes": disk.free})


@bp.get("/ready")
def ready():
    """Readiness: the store answers and the executor is loaded; 503 otherwise."""
    reg = get_registry()
    checks = {"store": False, "executor": reg.executor is not None}
    try:
        checks["store"] = reg.store.ping()
    except Exception as exc:  # a locked or missing database is exactly what this reports
        checks["store_error"] = str(exc)
    ok = checks["store"] and checks["executor"]
    body = {"status": "ready" if ok else "not ready", "checks": checks,
            "queue_depth": reg.store.queue_depth() if checks["store"] else None,
            "disk_free_bytes": shutil.disk_usage(reg.store.data_dir).free,
            "runner_busy_threads": reg.runner.busy}
    return jsonify(body), (200 if ok else 503)
