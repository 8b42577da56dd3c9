"""Test scenarios: what QRS, used as a test double, does to the next jobs and requests.

The JSON reads like localqpu's (``seed``, ``queue``, ``failures``, ``next_jobs``,
``backends``, ``usage``, ``auth``, ``noise``, ``http_faults``) so that a test suite can move
between the two unchanged. QRS extends it where it can do more:

* ``backends`` keys may be glob patterns (``"*"``, ``"fake_*"``); an exact name wins;
* ``backends.<name>.reason`` is shown as the status reason;
* ``usage`` without ``consumed_seconds`` counts the jobs' real usage against the limit;
* ``queue.polls_before_running`` defaults to 0 (jobs are not held unless asked), since
  QRS's status polls are real, not a simulation's clock.

Unknown keys are refused: a misspelt key silently ignored would make a test pass for the
wrong reason. ``parse`` raises ``ScenarioError`` naming each bad field.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

#: Longest delay a scenario may ask for (a request thread or a queued job waits that long).
MAX_DELAY_SECONDS = 3600.0

OUTCOMES = ("completed", "failed", "cancelled")
BACKEND_STATES = ("online", "offline", "paused")
PHASES = ("before", "after")


class ScenarioError(ValueError):
    """The scenario is malformed; the message names each bad field."""


@dataclass(frozen=True)
class Queue:
    """How long jobs stay ``Queued``: both conditions must be met before one may run."""

    delay_seconds: float = 0.0  # seconds after submission
    polls_before_running: int = 0  # status reads that answer Queued


@dataclass(frozen=True)
class Failures:
    """Random failures for jobs that ``next_jobs`` does not script."""

    rate: float = 0.0
    reason: str = "Simulated failure"
    reason_code: int = 9999


@dataclass(frozen=True)
class JobFate:
    """One scripted job outcome, applied when a runner claims the job."""

    outcome: str = "completed"
    reason: str | None = None
    reason_code: int | None = None


@dataclass(frozen=True)
class BackendOverride:
    """What a backend's status and listing say."""

    status: str = "online"
    queue_length: int | None = None  # None: the real number of pending jobs
    reason: str = ""


@dataclass(frozen=True)
class Usage:
    """The instance's usage; at the limit, submissions answer 403."""

    limit_seconds: float = 600.0
    consumed_seconds: float | None = None  # None: the jobs' real usage

    def reached(self, real_consumed: float) -> bool:
        return self.consumed(real_consumed) >= self.limit_seconds

    def consumed(self, real_consumed: float) -> float:
        return real_consumed if self.consumed_seconds is None else self.consumed_seconds


@dataclass(frozen=True)
class HttpFault:
    """A fault for requests matching ``method`` (any if None) and the fnmatch ``path``."""

    path: str
    method: str | None = None
    times: int = 1
    status: int | None = None
    retry_after: int | None = None
    message: str | None = None
    drop_connection: bool = False
    delay_seconds: float = 0.0
    phase: str = "before"  # before: fail instead of processing; after: process, lose answer

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method.upper()) and fnmatch.fnmatchcase(
            path, self.path
        )

    @property
    def fails(self) -> bool:
        """Whether the answer is replaced (a delay alone only slows it down)."""
        return self.drop_connection or self.status is not None

    def describe(self) -> str:
        """The journal's ``fault`` text (the words localqpu's journal uses)."""
        if self.drop_connection:
            return "drop_connection" + (" (after)" if self.phase == "after" else "")
        if self.status is not None:
            return f"status {self.status} ({self.phase})"
        return f"delay {self.delay_seconds:g}s"


@dataclass(frozen=True)
class Scenario:
    """The whole scenario; the default changes nothing."""

    seed: int | None = None
    queue: Queue = field(default_factory=Queue)
    failures: Failures = field(default_factory=Failures)
    next_jobs: tuple[JobFate, ...] = ()
    backends: Mapping[str, BackendOverride] = field(default_factory=dict)
    usage: Usage | None = None
    reject_tokens: bool = False
    noise: bool | None = None
    http_faults: tuple[HttpFault, ...] = ()

    def backend(self, name: str) -> BackendOverride | None:
        """The override for ``name``: its own entry, else the first matching pattern."""
        if name in self.backends:
            return self.backends[name]
        return next(
            (o for pattern, o in self.backends.items() if fnmatch.fnmatchcase(name, pattern)), None
        )

    def offline(self, name: str) -> bool:
        override = self.backend(name)
        return override is not None and override.status == "offline"

    @property
    def holds_jobs(self) -> bool:
        """Whether some queued jobs may have to wait (runners then look before claiming)."""
        return (
            self.queue.delay_seconds > 0
            or self.queue.polls_before_running > 0
            or any(o.status == "offline" for o in self.backends.values())
        )


# ------------------------------------------------------------------ validation
class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _seconds(default: float) -> fields.Float:
    return fields.Float(
        load_default=default, validate=validate.Range(min=0, max=MAX_DELAY_SECONDS)
    )


def _code(default: int | None) -> fields.Integer:
    return fields.Integer(
        load_default=default,
        allow_none=default is None,
        strict=True,
        validate=validate.Range(min=0, max=99999),
    )


class _QueueSchema(_Strict):
    delay_seconds = _seconds(0.0)
    polls_before_running = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=10_000)
    )

    @post_load
    def build(self, data: dict, **_: Any) -> Queue:
        return Queue(**data)


class _FailuresSchema(_Strict):
    rate = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=1))
    reason = fields.String(load_default="Simulated failure")
    reason_code = _code(9999)

    @post_load
    def build(self, data: dict, **_: Any) -> Failures:
        return Failures(**data)


class _FateSchema(_Strict):
    outcome = fields.String(load_default="completed", validate=validate.OneOf(OUTCOMES))
    reason = fields.String(load_default=None, allow_none=True)
    reason_code = _code(None)

    @post_load
    def build(self, data: dict, **_: Any) -> JobFate:
        return JobFate(**data)


class _BackendSchema(_Strict):
    status = fields.String(load_default="online", validate=validate.OneOf(BACKEND_STATES))
    queue_length = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0)
    )
    reason = fields.String(load_default="")

    @post_load
    def build(self, data: dict, **_: Any) -> BackendOverride:
        return BackendOverride(**data)


class _UsageSchema(_Strict):
    limit_seconds = fields.Float(load_default=600.0, validate=validate.Range(min=0))
    consumed_seconds = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0)
    )

    @post_load
    def build(self, data: dict, **_: Any) -> Usage:
        return Usage(**data)


class _AuthSchema(_Strict):
    reject_tokens = fields.Boolean(load_default=False)


class _FaultSchema(_Strict):
    path = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^/", error="must be a path pattern starting with '/', such as /api/v1/jobs/*"
        ),
    )
    method = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Za-z]+$")
    )
    times = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1))
    status = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=100, max=599)
    )
    retry_after = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=int(MAX_DELAY_SECONDS)),
    )
    message = fields.String(load_default=None, allow_none=True)
    drop_connection = fields.Boolean(load_default=False)
    delay_seconds = _seconds(0.0)
    phase = fields.String(load_default="before", validate=validate.OneOf(PHASES))

    @validates_schema
    def has_effect(self, data: dict, **_: Any) -> None:
        if (
            data.get("status") is None
            and not data.get("drop_connection")
            and not data.get("delay_seconds")
        ):
            raise ValidationError("a fault needs status, drop_connection or delay_seconds")

    @post_load
    def build(self, data: dict, **_: Any) -> HttpFault:
        if data["method"]:
            data["method"] = data["method"].upper()
        return HttpFault(**data)


class _ScenarioSchema(_Strict):
    seed = fields.Integer(load_default=None, allow_none=True, strict=True)
    queue = fields.Nested(_QueueSchema, load_default=Queue)
    failures = fields.Nested(_FailuresSchema, load_default=Failures)
    next_jobs = fields.List(fields.Nested(_FateSchema), load_default=list)
    backends = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.Nested(_BackendSchema),
        load_default=dict,
    )
    usage = fields.Nested(_UsageSchema, load_default=None, allow_none=True)
    auth = fields.Nested(_AuthSchema, load_default=dict)
    noise = fields.Boolean(load_default=None, allow_none=True)
    http_faults = fields.List(fields.Nested(_FaultSchema), load_default=list)

    @post_load
    def build(self, data: dict, **_: Any) -> Scenario:
        auth = data.pop("auth")
        return Scenario(
            reject_tokens=bool(auth.get("reject_tokens", False)),
            next_jobs=tuple(data.pop("next_jobs")),
            http_faults=tuple(data.pop("http_faults")),
            **data,
        )


_SCHEMA = _ScenarioSchema()


def _flatten(messages: Any, where: str = "") -> list[str]:
    """marshmallow's nested messages as ``next_jobs.0.outcome: ...`` lines."""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in _flatten(value, f"{where}.{key}" if where else str(key))
        ]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{where or 'scenario'}: {' '.join(messages)}"]
    return [f"{where or 'scenario'}: {messages}"]


def parse(raw: object) -> Scenario:
    """Validate a scenario (parsed JSON); ``ScenarioError`` names every bad field."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            "A scenario is a JSON object, such as "
            '{"next_jobs": [{"outcome": "failed", "reason": "calibrating"}]}.'
        )
    try:
        return _SCHEMA.load(raw)
    except ValidationError as exc:
        lines = sorted(_flatten(exc.normalized_messages()))
        raise ScenarioError("Invalid scenario: " + "; ".join(lines)) from None


def load_file(path: str | Path) -> Scenario:
    """A scenario from a JSON file (``qrs serve --scenario FILE``, ``QRS_SCENARIO``)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"Cannot read the scenario file {path}: {exc.strerror}.") from None
    except ValueError as exc:
        raise ScenarioError(f"The scenario file {path} is not valid JSON: {exc}.") from None
    return parse(raw)


def to_json(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON that ``parse`` reads back to the same scenario."""
    raw = dataclasses.asdict(scenario)
    raw["next_jobs"] = list(raw["next_jobs"])
    raw["http_faults"] = list(raw["http_faults"])
    raw["auth"] = {"reject_tokens": raw.pop("reject_tokens")}
    return raw
