"""Marshmallow schemas for every request body and query the API accepts.

Bodies use ``EXCLUDE`` (the stock client adds fields with each release); queries are
strict, so a misspelt filter is an error rather than silently ignored. Views receive
validated dicts only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from .errors import InvalidInput

_TAG = fields.String(validate=validate.Length(min=1, max=256))


class Body(Schema):
    class Meta:
        unknown = EXCLUDE


class Query(Schema):
    class Meta:
        unknown = RAISE


class TokenRequest(Body):
    """``POST /identity/token``: the client's IAM form (``grant_type``, ``apikey``)."""

    apikey = fields.String(load_default="", validate=validate.Length(max=1024))
    grant_type = fields.String(load_default=None, allow_none=True)


class JobCreate(Body):
    """``POST /jobs``: what ``QiskitRuntimeService._run`` sends."""

    program_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    backend = fields.String(required=True, validate=validate.Length(min=1, max=128))
    params = fields.Dict(required=True)
    session_id = fields.String(load_default=None, allow_none=True)
    tags = fields.List(_TAG, load_default=list, allow_none=True)
    log_level = fields.String(load_default=None, allow_none=True)
    cost = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    private = fields.Boolean(load_default=False, allow_none=True)
    calibration_id = fields.String(load_default=None, allow_none=True)
    runtime = fields.String(load_default=None, allow_none=True)
    start_session = fields.Boolean(load_default=False, allow_none=True)
    session_time = fields.Integer(load_default=None, allow_none=True)


class SimulatorOptions(Body):
    """``options.simulator``: the settings QRS hands to Aer."""

    seed_simulator = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=2**63 - 1))
    noise_model = fields.Raw(allow_none=True)  # a decoded NoiseModel, or its dict
    coupling_map = fields.List(
        fields.List(fields.Integer(), validate=validate.Length(equal=2)), allow_none=True
    )
    basis_gates = fields.List(fields.String(), allow_none=True)


class ExecutionOptions(Body):
    """``options.execution``: ``meas_type`` picks bits or emulated IQ data (docs/noise.md)."""

    meas_type = fields.String(
        allow_none=True, validate=validate.OneOf(["classified", "kerneled", "avg_kerneled"])
    )


class PrimitiveOptions(Body):
    """``params.options`` of a job: the fields QRS acts on must have usable types (the
    rest is logged as ignored by the runner)."""

    default_shots = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    default_precision = fields.Float(
        allow_none=True, validate=validate.Range(min=0, min_inclusive=False)
    )
    max_execution_time = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    simulator = fields.Nested(SimulatorOptions, allow_none=True)
    execution = fields.Nested(ExecutionOptions, allow_none=True)


class JobGetQuery(Query):
    exclude_params = fields.Boolean(load_default=False)


class JobsQuery(Query):
    """``GET /jobs`` filters and paging (``service.jobs(...)``)."""

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    backend = fields.String(load_default=None)
    pending = fields.Boolean(load_default=None, allow_none=True)
    program = fields.String(load_default=None)
    tags = fields.List(_TAG, load_default=list)
    session_id = fields.String(load_default=None)
    created_after = fields.AwareDateTime(load_default=None, default_timezone=None)
    created_before = fields.AwareDateTime(load_default=None, default_timezone=None)
    sort = fields.String(
        load_default="DESC", validate=validate.OneOf(["ASC", "DESC", "asc", "desc"])
    )
    exclude_params = fields.Boolean(load_default=True)
    include_mocks = fields.Boolean(load_default=False)


class TagsUpdate(Body):
    tags = fields.List(_TAG, required=True)


class SessionCreate(Body):
    """``POST /sessions``: ``Session(...)``/``Batch(...)`` opening."""

    mode = fields.String(load_default="dedicated", validate=validate.OneOf(["dedicated", "batch"]))
    backend = fields.String(load_default=None, allow_none=True)
    instance = fields.String(load_default=None, allow_none=True)
    max_ttl = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))


class SessionPatch(Body):
    accepting_jobs = fields.Boolean(required=True)


class BackendsQuery(Query):
    include_mocks = fields.Boolean(load_default=False)


class PropertiesQuery(Query):
    updated_before = fields.String(load_default=None)
    calibration_id = fields.String(load_default=None)


class ConfigurationQuery(Query):
    calibration_id = fields.String(load_default=None)


_JSON_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


@functools.cache
def _instance(schema_class: type[Schema]) -> Schema:
    """One instance per schema class: building one deep-copies its fields (~0.2 ms), and
    ``Schema.load`` keeps no state between calls, so request threads can share it."""
    return schema_class()


def load(schema: type[Schema] | Schema, data: object, where: str = "body") -> dict:
    """Validate ``data`` or raise ``InvalidInput`` naming each bad field."""
    if isinstance(schema, type):
        schema = _instance(schema)
    if not isinstance(data, Mapping):
        got = "" if data is None else ", not " + _JSON_NAMES.get(type(data), "that")
        raise InvalidInput(f"The request {where} must be a JSON object{got}.")
    try:
        return schema.load(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for field, msgs in sorted(exc.normalized_messages().items())
        )
        raise InvalidInput(f"Invalid request {where}: {problems}") from None
