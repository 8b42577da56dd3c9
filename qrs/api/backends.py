"""Backend metadata endpoints: list, configuration, properties, status."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import schemas
from ..registry import get_registry

bp = Blueprint("backends", __name__)


@bp.get("/backends")
def list_backends():
    """Every served backend, mock ones for dry runs included, with its queue length and
    ``physical_qubits``."""
    schemas.load(schemas.BackendsQuery(), request.args, "query")
    reg = get_registry()
    queues = reg.store.backend_queue_lengths()
    names = reg.metadata.names() + reg.metadata.mock_names()  # mocks answer dry runs
    return jsonify(
        {"devices": [reg.metadata.summary(name, queues.get(name, 0)) for name in names]}
    )


@bp.get("/backends/<name>/configuration")
def configuration(name: str):
    """A backend's configuration JSON (404 for an unknown name or calibration id)."""
    query = schemas.load(schemas.ConfigurationQuery(), request.args, "query")
    return jsonify(get_registry().metadata.get_configuration(name, query["calibration_id"]))


@bp.get("/backends/<name>/properties")
def properties(name: str):
    """A backend's calibration properties JSON with its ``calibration_id`` (404 for an
    unknown name or calibration id)."""
    query = schemas.load(schemas.PropertiesQuery(), request.args, "query")
    return jsonify(get_registry().metadata.get_properties(name, query["calibration_id"]))


@bp.get("/backends/<name>/status")
def status(name: str):
    """A backend's status with its queue length (queued and running jobs)."""
    reg = get_registry()
    queue = reg.store.backend_queue_lengths().get(name, 0) if reg.metadata.exists(name) else 0
    return jsonify(reg.metadata.status(name, queue))
