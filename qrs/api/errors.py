"""The Flask error handlers: every error, typed or not, as IBM-shaped JSON (``error_body``).

Nothing else formats errors. gunicorn's body-framing errors are handled here too, so
only the web layer knows about Flask, werkzeug and gunicorn.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, current_app, jsonify
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import InvalidInput, PayloadTooLarge, QRSError, error_body

log = logging.getLogger("qrs.errors")


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
        return _respond(
            413,
            PayloadTooLarge.code,
            f"The request body is larger than {limit:g} MiB, this server's limit "
            "(QRS_MAX_BODY_MB). Split the work into smaller jobs.",
        )

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _unreadable_body(exc: Exception) -> Response:
        """gunicorn raises these inside the view when a body's framing is broken (bad
        chunk sizes, a body shorter than announced): the client's fault, not ours."""
        return _respond(
            400,
            InvalidInput.code,
            f"The request body could not be read: {type(exc).__name__}: {exc}.",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return _respond(status, 1000 + status, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error: %s\n%s", exc, traceback.format_exc())
        return _respond(500, 1500, "Internal server error; the server log has the details.")
