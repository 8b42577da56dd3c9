"""The OpenAPI 3 document (``GET /openapi.json``) and its browsable page (``GET /docs``).

The document is generated, not written: apispec walks the app's URL map, so every route
appears, and the marshmallow request schemas of ``schemas.py`` become its parameters and
bodies. Response bodies, which views build as plain dicts, are described by the schemas
of ``responses.py``. ``OPERATIONS`` says which schema goes where; a route it does not name still
appears, summarised from its view's docstring.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template

from . import __version__, schemas
from .responses import (
    BackendList,
    BackendStatus,
    Error,
    Health,
    Job,
    JobCreated,
    JobList,
    JobMetrics,
    Ready,
    Session,
    Token,
    Usage,
)

# ----------------------------------------------------------------- the operation table
_JSON = "application/json"


def _op(
    tag: str,
    summary: str,
    ok: Any,
    *,
    body: type | None = None,
    query: type | None = None,
    errors: tuple[int, ...] = (),
    **extra: Any,
) -> dict:
    """One row of ``OPERATIONS``: ``ok`` is the 200 schema or ``(status, media type)``."""
    return {
        "tag": tag,
        "summary": summary,
        "ok": ok,
        "body": body,
        "query": query,
        "errors": errors,
        **extra,
    }


_NO_BODY = (204, None)
_TEXT = (200, "text/plain")

#: view name (as registered at "/") → what the document says about it.
OPERATIONS: dict[str, dict[str, Any]] = {
    "identity.token": _op(
        "auth",
        "Exchange an API key (form field apikey) for a bearer token.",
        Token,
        errors=(401,),
        form=True,
    ),
    "backends.list_backends": _op(
        "backends",
        "Every served backend with its qubit count, status and queue length.",
        BackendList,
        query=schemas.BackendsQuery,
    ),
    "backends.configuration": _op(
        "backends",
        "A backend's configuration (coupling map, basis gates, ...).",
        "object",
        query=schemas.ConfigurationQuery,
        errors=(404,),
    ),
    "backends.properties": _op(
        "backends",
        "A backend's calibration properties (T1, T2, gate and readout errors).",
        "object",
        query=schemas.PropertiesQuery,
        errors=(404,),
    ),
    "backends.status": _op("backends", "A backend's status and queue length.", BackendStatus),
    "jobs.create_job": _op(
        "jobs",
        "Submit a sampler or estimator job.",
        JobCreated,
        body=schemas.JobCreate,
        errors=(400, 404, 409, 413, 429),
    ),
    "jobs.list_jobs": _op(
        "jobs",
        "The caller's jobs, newest first, filtered and paged.",
        JobList,
        query=schemas.JobsQuery,
    ),
    "jobs.read_job": _op(
        "jobs",
        "A job's status and details (held briefly while it finishes).",
        Job,
        query=schemas.JobGetQuery,
        errors=(404,),
    ),
    "jobs.results": _op(
        "jobs",
        "The result text the client decodes (or the failure message).",
        "object",
        errors=(404, 409),
    ),
    "jobs.cancel": _op("jobs", "Cancel a queued or running job.", _NO_BODY, errors=(404, 409)),
    "jobs.delete": _op(
        "jobs", "Delete a job with its params, result and log.", _NO_BODY, errors=(404,)
    ),
    "jobs.logs": _op("jobs", "The job's log lines.", _TEXT, errors=(404,)),
    "jobs.metrics": _op("jobs", "Timestamps and usage of a job.", JobMetrics, errors=(404,)),
    "jobs.update_tags": _op(
        "jobs", "Replace a job's tags.", _NO_BODY, body=schemas.TagsUpdate, errors=(400, 404)
    ),
    "jobs.usage": _op("jobs", "Execution seconds the caller has used.", Usage),
    "jobs.instance_configuration": _op("jobs", "Instance settings the client reads.", "object"),
    "sessions.create_session": _op(
        "sessions",
        "Open a session or batch.",
        Session,
        body=schemas.SessionCreate,
        errors=(400, 404),
    ),
    "sessions.read_session": _op(
        "sessions", "A session's state and details.", Session, errors=(404,)
    ),
    "sessions.update_session": _op(
        "sessions",
        "Close a session to new jobs (accepting_jobs=false).",
        _NO_BODY,
        body=schemas.SessionPatch,
        errors=(400, 404),
    ),
    "sessions.cancel_session": _op(
        "sessions", "Cancel a session and its queued jobs.", _NO_BODY, errors=(404,)
    ),
    "health.health": _op("operations", "Liveness: the process serves requests.", Health),
    "health.ready": _op(
        "operations", "Readiness: store, executor and runner are up (else 503).", Ready
    ),
    "health.metrics": _op("operations", "Prometheus metrics of all worker processes.", _TEXT),
    "docs.openapi_json": _op("operations", "This OpenAPI document.", "object"),
    "docs.docs": _op("operations", "This document as a readable page.", (200, "text/html")),
}

#: Tags that need no token. The dashboard has its own sign-in (api/dashboard.py).
_PUBLIC_TAGS = {"operations", "auth"}
_DASHBOARD_OPEN = {"dashboard.root", "dashboard.login"}
_ALT_PREFIX = "/api/v1"


def openapi_path(rule: str) -> str:
    """``/jobs/<job_id>`` → ``/jobs/{job_id}`` (converters such as ``<int:n>`` too)."""
    return re.sub(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def _base_endpoint(endpoint: str) -> str:
    """``jobs_api_v1.read_job`` → ``jobs.read_job`` (the same view at the other root)."""
    blueprint, _, view = endpoint.rpartition(".")
    return f"{blueprint.removesuffix(_ALT_PREFIX.replace('/', '_'))}.{view}"


def _response(ok: Any) -> dict[str, Any]:
    """The success entry of ``responses`` for an ``OPERATIONS`` row's ``ok``."""
    if isinstance(ok, tuple):
        status, media = ok
        answer: dict[str, Any] = {"description": "No content" if status == 204 else "OK"}
        if media:
            answer["content"] = {media: {"schema": {"type": "string"}}}
        return {str(status): answer}
    schema = {"type": "object"} if ok == "object" else ok
    return {"200": {"description": "OK", "content": {_JSON: {"schema": schema}}}}


def _operation(endpoint: str, view: Any, path: str, method: str | None) -> dict[str, Any]:
    """One operation; ``method`` is given when the view serves several (unique ids)."""
    info = OPERATIONS.get(_base_endpoint(endpoint), {})
    doc = (view.__doc__ or "").strip().replace("``", "")
    summary = info.get("summary") or (
        doc.splitlines()[0] if doc else endpoint.rpartition(".")[2].replace("_", " ")
    )
    tag = info.get("tag") or endpoint.partition(".")[0].split("_")[0]
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "operationId": endpoint.replace(".", "_") + (f"_{method.lower()}" if method else ""),
        "responses": _response(info.get("ok", (200, None))),
    }
    if doc and "\n" in doc:
        operation["description"] = doc
    names = re.findall(r"{([^}]+)}", path)
    parameters: list[Any] = [
        {"in": "path", "name": n, "required": True, "schema": {"type": "string"}} for n in names
    ]
    if info.get("query"):
        parameters.append({"in": "query", "schema": info["query"]})
    if parameters:
        operation["parameters"] = parameters
    if info.get("body"):
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": info["body"]}}}
    elif info.get("form"):
        operation["requestBody"] = {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"apikey": {"type": "string"}}}
                }
            }
        }
    for status in info.get("errors", ()):
        operation["responses"][str(status)] = {
            "description": "Error",
            "content": {_JSON: {"schema": Error}},
        }
    if tag in _PUBLIC_TAGS or _base_endpoint(endpoint) in _DASHBOARD_OPEN:
        operation["security"] = []
    elif tag == "dashboard":
        operation["security"] = [{"dashboardCookie": []}]
    return operation


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route ``app`` serves."""
    spec = APISpec(
        title="QRS — Qiskit Runtime Server",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "The IBM Qiskit Runtime REST API subset the stock "
            "qiskit-ibm-runtime client uses, served for a local Aer "
            f"simulator. The API answers at both / and {_ALT_PREFIX}; "
            "the paths below are the / ones."
        },
        servers=[{"url": "/"}, {"url": _ALT_PREFIX}],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.security_scheme(
        "dashboardCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "qrs_ui_token",
            "description": "Set by /ui/login for an admin key; not needed in open mode.",
        },
    )
    operations: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.rule.startswith(_ALT_PREFIX + "/"):
            continue
        path = openapi_path(rule.rule)
        view = app.view_functions[rule.endpoint]
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            operations.setdefault(path, {})[method.lower()] = _operation(
                rule.endpoint, view, path, method if len(methods) > 1 else None
            )
    for path, ops in operations.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def spec_for(app: Flask) -> dict[str, Any]:
    """The document, built once per app (routes do not change after start-up)."""
    if "qrs_openapi" not in app.extensions:
        app.extensions["qrs_openapi"] = build_spec(app)
    return app.extensions["qrs_openapi"]


bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi_json():
    """This server's OpenAPI 3 document."""
    return jsonify(spec_for(current_app))


@bp.get("/docs")
def docs():
    """The OpenAPI document as a readable page: every operation, its inputs and outputs."""
    spec = spec_for(current_app)
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            groups.setdefault(op["tags"][0], []).append(
                {"method": method.upper(), "path": path, "op": op}
            )
    return render_template(
        "docs.html",
        spec=spec,
        groups=groups,
        components=spec.get("components", {}).get("schemas", {}),
    )


def register_docs(app: Flask) -> None:
    """Serve ``/openapi.json`` and ``/docs`` (at the root only: they describe both roots)."""
    app.register_blueprint(bp)
