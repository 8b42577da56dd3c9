"""The response bodies of the REST API, as marshmallow schemas for the OpenAPI document.

Views build their answers as plain dicts (the client's decoders read them); these schemas
only describe them in ``GET /openapi.json`` (``openapi.py``). Request bodies have their
own, validating, schemas in ``schemas.py``.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorItem(Schema):
    code = fields.Integer()
    message = fields.String()
    more_info = fields.String()


class Error(Schema):
    """Every 4xx/5xx answer: IBM's error shape."""

    errors = fields.List(fields.Nested(ErrorItem))
    trace = fields.String()


class Token(Schema):
    access_token = fields.String(metadata={"description": "HS256 JWT; send as 'Bearer'."})
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    expiration = fields.Integer()
    scope = fields.String()


class Backend(Schema):
    name = fields.String()
    status = fields.Dict()
    queue_length = fields.Integer()
    qubits = fields.Integer()
    processor_type = fields.Dict()
    clops = fields.Dict()
    wait_time_seconds = fields.Float(allow_none=True)
    performance_metrics = fields.Dict()


class BackendList(Schema):
    devices = fields.List(fields.Nested(Backend))


class BackendStatus(Schema):
    state = fields.Boolean()
    status = fields.String()
    message = fields.String()
    length_queue = fields.Integer()
    backend_version = fields.String()


class JobState(Schema):
    status = fields.String(
        metadata={"enum": ["Queued", "Running", "Completed", "Failed", "Cancelled"]}
    )
    reason = fields.String()
    reason_code = fields.Integer()


class Job(Schema):
    id = fields.String()
    backend = fields.String()
    status = fields.String()
    state = fields.Nested(JobState)
    created = fields.DateTime()
    program = fields.Dict(metadata={"description": "{'id': 'sampler' | 'estimator'}"})
    session_id = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    private = fields.Boolean()
    cost = fields.Integer(allow_none=True)
    user_id = fields.String()
    usage = fields.Dict()
    params = fields.Dict(metadata={"description": "Only without exclude_params=true."})


class JobCreated(Schema):
    id = fields.String()
    backend = fields.String()
    session_id = fields.String(allow_none=True)
    private = fields.Boolean()
    status = fields.String()
    created = fields.DateTime()


class JobList(Schema):
    jobs = fields.List(fields.Nested(Job))
    count = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class JobMetrics(Schema):
    timestamps = fields.Dict()
    usage = fields.Dict()
    num_pubs = fields.Integer()
    executor = fields.String()
    attempts = fields.Integer()


class Session(Schema):
    id = fields.String()
    backend_name = fields.String(allow_none=True)
    mode = fields.String(metadata={"enum": ["dedicated", "batch"]})
    state = fields.String()
    accepting_jobs = fields.Boolean()
    max_ttl = fields.Integer()
    interactive_ttl = fields.Integer()
    started_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    elapsed_time = fields.Float()
    close_reason = fields.String(allow_none=True)


class Usage(Schema):
    usage_consumed_seconds = fields.Float()
    usage_limit_seconds = fields.Float(allow_none=True)
    usage_limit_reached = fields.Boolean()


class Health(Schema):
    status = fields.String()
    executor = fields.String()
    data_dir_bytes = fields.Integer()
    disk_free_bytes = fields.Integer()


class Ready(Schema):
    status = fields.String(metadata={"enum": ["ready", "not ready"]})
    checks = fields.Dict()
    queue_depth = fields.Integer(allow_none=True)
    disk_free_bytes = fields.Integer()
    executor = fields.String()
    runner_busy_threads = fields.Integer()
    runner_threads = fields.Integer()
