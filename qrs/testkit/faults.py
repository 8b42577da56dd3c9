"""HTTP-level faults and the request journal, as WSGI middleware around the whole app.

Sitting outside Flask, it sees every request as the client sent it (both API roots) and
every answer as it leaves, so it can fail a request before any view runs (``phase:
before``), or let the view run in full and then lose its answer (``phase: after``: the
job is stored, the client sees a 503 and — since the stock client retries ``POST`` on 5xx
— submits it again; an ``Idempotency-Key`` header would have returned the first job).

A dropped connection shuts the request's socket (gunicorn and werkzeug both hand it over
in the environ) before anything is written: the client sees the connection closed
without an answer. The control API (``/_qrs/``) is never faulted nor journalled.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from ..errors import error_body
from .journal import Journal
from .scenario import HttpFault
from .state import ScenarioState

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_qrs/"

#: Where WSGI servers put the client's socket.
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")

StartResponse = Callable[..., Any]


class FaultMiddleware:
    """Apply the scenario's ``http_faults`` and journal every request."""

    def __init__(self, app: Callable, state: ScenarioState, journal: Journal | None) -> None:
        self.app = app
        self.state = state
        self.journal = journal

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        started = time.monotonic()
        taken = self.state.take_fault(method, path)
        sent: dict[str, int | None] = {}

        def recording(status: str, headers: list, exc_info: Any = None) -> Any:
            sent["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            if taken is None:
                return self.app(environ, recording)
            index, fault = taken
            return self._faulted(environ, recording, index, fault, sent)
        finally:
            if self.journal is not None:
                self.journal.record(
                    method,
                    path,
                    sent.get("status"),
                    taken[1].describe() if taken else None,
                    started,
                )

    def _faulted(
        self,
        environ: dict,
        start_response: StartResponse,
        index: int,
        fault: HttpFault,
        sent: dict,
    ) -> Iterable[bytes]:
        if fault.phase == "before":
            time.sleep(fault.delay_seconds)
            if fault.fails:
                return self._fail(environ, start_response, index, fault, sent)
            return self.app(environ, start_response)
        answer = _run_to_completion(self.app, environ)  # processed in full: the job exists
        time.sleep(fault.delay_seconds)
        if fault.fails:
            return self._fail(environ, start_response, index, fault, sent)
        status, headers, body = answer
        start_response(status, headers)
        return body

    @staticmethod
    def _fail(
        environ: dict, start_response: StartResponse, index: int, fault: HttpFault, sent: dict
    ) -> Iterable[bytes]:
        if fault.drop_connection:
            sock = next((environ[k] for k in _SOCKET_KEYS if k in environ), None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                # The server's write of this answer fails on the closed socket, which both
                # gunicorn and werkzeug treat as a client that went away.
                start_response("503 Service Unavailable", [("Content-Length", "0")])
                sent["status"] = None
                return []
            log.warning(
                "http_faults[%d]: this WSGI server does not expose the socket; "
                "answering 503 instead of dropping the connection",
                index,
            )
        status = fault.status or 503
        message = fault.message or (
            f"QRS test scenario: http_faults[{index}] injected {status} ({fault.phase})."
        )
        body = json.dumps(error_body(status, 1000 + status, message)).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-QRS-Fault", f"http_faults[{index}]"),
        ]
        retry_after = (
            fault.retry_after if fault.retry_after is not None else (1 if status == 429 else None)
        )
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        start_response(f"{status} {_phrase(status)}", headers)
        return [body]


def _run_to_completion(app: Callable, environ: dict) -> tuple[str, list, list[bytes]]:
    """Call the app and read its whole answer, without sending any of it."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured.update(status=status, headers=headers)
        return chunks.append

    result = app(environ, capture)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], chunks


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected Fault"
