"""Typed errors: what the API answers with a 4xx, raised anywhere in QRS.

Plain Python on purpose: the codec, the runner, executors and Dask workers raise these
without importing Flask, werkzeug or gunicorn. ``api/errors.py`` turns them into the
IBM-shaped JSON answer. The stock client shows ``errors[0].message`` to the user, so
every message says what was wrong and, where it can, how to fix it.
"""

from __future__ import annotations


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
