"""Scenario answers inside Flask: refused tokens, usage limits, backend states, status polls.

These hook the app's ``before_request`` / ``after_request`` by endpoint name, so no view
knows about scenarios: the views answer as always and the scenario adjusts the answer
(backend listing and status, instance usage), refuses the request (token exchange,
submission past the usage limit) or counts it (status polls of a held job).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, jsonify, request

from .. import API_PREFIXES
from ..errors import Forbidden, Unauthorized
from ..registry import get_registry
from .scenario import Scenario
from .state import ScenarioState

#: Blueprints whose every request needs a token (the client's API calls).
_API_BLUEPRINTS = frozenset({"backends", "jobs", "sessions"})
_SUFFIXES = tuple(prefix.replace("/", "_") for prefix in API_PREFIXES if prefix)


def _view() -> str:
    """``blueprint.function`` of this request, the same under both API roots."""
    endpoint = request.endpoint or ""
    blueprint, _, function = endpoint.rpartition(".")
    for suffix in _SUFFIXES:
        blueprint = blueprint.removesuffix(suffix)
    return f"{blueprint}.{function}"


def install(app: Flask, state: ScenarioState) -> None:
    """Register the hooks (after ``authenticate``, so they see the caller)."""

    @app.before_request
    def _scenario_before() -> Response | None:
        view = _view()
        api = view.partition(".")[0] in _API_BLUEPRINTS
        if not api and view not in ("identity.token", "jobs.create_job", "jobs.read_job"):
            return None
        scenario = state.scenario()
        if view == "identity.token" and scenario.reject_tokens:
            return _refuse_token()
        if api and scenario.reject_tokens:
            # The client falls back to sending the key itself: refuse that too.
            raise Unauthorized("Invalid API key: refused (QRS test scenario: auth.reject_tokens).")
        if view == "jobs.create_job" and scenario.usage is not None:
            consumed = _consumed(scenario)
            if scenario.usage.reached(consumed):
                raise Forbidden(
                    f"This instance has reached its usage limit ({consumed:g} of "
                    f"{scenario.usage.limit_seconds:g} s used; QRS test scenario 'usage'). "
                    "Workloads will not run until time is made available."
                )
        if view == "jobs.read_job" and scenario.queue.polls_before_running:
            polls = state.count_poll(str((request.view_args or {}).get("job_id", "")))
            if polls == scenario.queue.polls_before_running + 1:
                get_registry().runner.announce()  # this read releases the job: run it now
        return None

    @app.after_request
    def _scenario_after(response: Response) -> Response:
        view = _view()
        if response.status_code != 200 or view not in (
            "backends.list_backends",
            "backends.status",
            "jobs.usage",
        ):
            return response
        scenario = state.scenario()
        data = response.get_json(silent=True)
        if not isinstance(data, dict):
            return response
        if view == "backends.list_backends" and scenario.backends:
            for device in data.get("devices", []):
                _patch_device(device, scenario)
        elif view == "backends.status" and scenario.backends:
            _patch_status(data, scenario, str((request.view_args or {}).get("name", "")))
        elif view == "jobs.usage" and scenario.usage is not None:
            _patch_usage(data, scenario)
        else:
            return response
        response.set_data(json.dumps(data))
        return response


def _refuse_token() -> Response:
    """What IBM Cloud's IAM answers for an unknown API key (the client then refuses the
    account with ``InvalidAccountError``/``IBMNotAuthorizedError``)."""
    response = jsonify(
        {
            "errorCode": "BXNIM0415E",
            "errorMessage": "Provided API key could not be found "
            "(QRS test scenario: auth.reject_tokens).",
            "context": {"requestId": "qrs-testkit"},
        }
    )
    response.status_code = 400
    return response


def _consumed(scenario: Scenario) -> float:
    from ..api.common import owner_filter

    assert scenario.usage is not None
    real = 0.0
    if scenario.usage.consumed_seconds is None:
        real = get_registry().store.usage_seconds(owner_filter())
    return scenario.usage.consumed(real)


def _patch_device(device: dict[str, Any], scenario: Scenario) -> None:
    override = scenario.backend(str(device.get("name", "")))
    if override is None:
        return
    device["status"] = {"name": override.status, "reason": override.reason}
    if override.queue_length is not None:
        device["queue_length"] = override.queue_length


def _patch_status(data: dict[str, Any], scenario: Scenario, name: str) -> None:
    override = scenario.backend(name)
    if override is None:
        return
    data["state"] = override.status != "offline"
    data["status"] = "active" if override.status == "online" else override.status
    data["message"] = override.reason
    if override.queue_length is not None:
        data["length_queue"] = override.queue_length


def _patch_usage(data: dict[str, Any], scenario: Scenario) -> None:
    usage = scenario.usage
    assert usage is not None
    consumed = _consumed(scenario)
    data.update(
        usage_consumed_seconds=consumed,
        usage_limit_seconds=usage.limit_seconds,
        usage_allocation_seconds=usage.limit_seconds,
        usage_limit_reached=usage.reached(consumed),
        usage_remaining_seconds=max(usage.limit_seconds - consumed, 0.0),
    )
