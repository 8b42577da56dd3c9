"""Typed errors and the one handler that turns them into IBM-shaped JSON.

The stock client shows ``errors[0].message`` to the user, so every message says what
was wrong and, where it can, how to fix it.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, current_app, jsonify
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)


class QRSError(Exception):
    """Base of every error the API answers with a 4xx."""

    status = 400
    code = 1400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(QRSError):
    """The request body or query is malformed or names something impossible."""

    status, code = 400, 1400


class Unauthorized(QRSError):
    """Missing, malformed, expired or revoked credentials."""

    status, code = 401, 1401


class Forbidden(QRSError):
    """Valid credentials that do not allow this (e.g. a non-admin key on the dashboard)."""

    status, code = 403, 1403


class NotFound(QRSError):
    """No such job, session or backend (or not visible to this user)."""

    status, code = 404, 1404


class Conflict(QRSError):
    """The resource is in a state that does not allow the operation."""

    status, code = 409, 1409


class Gone(QRSError):
    """The resource existed but was deleted on purpose (a private job's result, once read)."""

    status, code = 410, 1410


class PayloadTooLarge(QRSError):
    """Body or decoded payload above the configured limit."""

    status, code = 413, 1413


class LimitExceeded(QRSError):
    """A configured limit (shots, pubs, queue depth, ...) was exceeded."""

    status, code = 400, 1422


class TooManyRequests(QRSError):
    """The user's queue is full; retry later."""

    status, code = 429, 1429


def error_body(status: int, code: int, message: str) -> dict:
    """The IBM Runtime error shape (PROTOCOL.md section 5)."""
    return {
        "errors": [{"code": code, "message": message, "more_info": ""}],
        "trace": "",
        "status_code": status,
    }


def _respond(status: int, code: int, message: str, headers: dict | None = None) -> Response:
    response = jsonify(error_body(status, code, message))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Install one handler per error family; nothing else formats errors."""

    @app.errorhandler(QRSError)
    def _qrs_error(exc: QRSError) -> Response:
        return _respond(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) / 2**20
        return _respond(413, PayloadTooLarge.code,
                        f"The request body is larger than {limit:g} MiB, this server's limit "
                        "(QRS_MAX_BODY_MB). Split the work into smaller jobs.")

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _unreadable_body(exc: Exception) -> Response:
        """gunicorn raises these inside the view when a body's framing is broken (bad
        chunk sizes, a body shorter than announced): the client's fault, not ours."""
        return _respond(400, InvalidInput.code,
                        f"The request body could not be read: {type(exc).__name__}: {exc}.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return _respond(status, 1000 + status, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error: %s\n%s", exc, traceback.format_exc())
        return _respond(500, 1500, "Internal server error; the server log has the details.")
