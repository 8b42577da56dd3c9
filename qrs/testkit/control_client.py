"""A small client of the control API (``/_qrs/``): what the ``qrs_control`` fixture is.

Plain ``urllib`` with proxies disabled: the control API is on loopback, and the test's
proxy variables must not send these requests (nor the admin key) anywhere else.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


class ControlError(RuntimeError):
    """The control API refused a request; the message is the server's."""


class Control:
    """Set scenarios, reset, and read the job summary and the request journal."""

    def __init__(self, url: str, admin_key: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"apikey {admin_key}"} if admin_key else {}
        self._timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def scenario(self) -> dict[str, Any]:
        """The scenario in force: unconsumed ``next_jobs``, faults with uses left."""
        return self._call("GET", "/_qrs/scenario")

    def set_scenario(self, scenario: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the scenario (``ControlError`` naming the bad field if it is invalid)."""
        return self._call("PUT", "/_qrs/scenario", dict(scenario))

    def reset(self) -> None:
        """The initial scenario, an empty journal, no jobs, no open sessions."""
        self._call("POST", "/_qrs/reset")

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, oldest first, with its status, reason, polls and scenario rule."""
        return self._call("GET", "/_qrs/jobs")["jobs"]

    def requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The journal, oldest first: method, path, status, fault, duration_ms, worker."""
        query = f"?limit={int(limit)}" if limit else ""
        return self._call("GET", "/_qrs/requests" + query)["requests"]

    def statuses(self, method: str, path: str) -> list[int | None]:
        """Statuses of the journalled requests for ``method`` and exactly ``path``."""
        return [
            r["status"]
            for r in self.requests()
            if r["method"] == method.upper() and r["path"] == path
        ]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self._headers, **({"Content-Type": "application/json"} if data else {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self._timeout) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as exc:
            raise ControlError(f"{method} {path} answered {exc.code}: {_message(exc)}") from None
        return json.loads(text) if text else None


def _message(exc: urllib.error.HTTPError) -> str:
    text = exc.read().decode(errors="replace")
    try:
        return "; ".join(e["message"] for e in json.loads(text)["errors"])
    except (ValueError, KeyError, TypeError):
        return text[:500]
