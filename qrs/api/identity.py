"""``POST /identity/token``: the IAM token exchange the client performs first.

The client reads ``access_token`` as a JWT (without checking its signature) for its
expiry, so the token is a real HS256 JWT; the server does check the signature.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import schemas
from ..registry import get_registry
from .common import json_body

bp = Blueprint("identity", __name__)


@bp.post("/identity/token")
def token():
    """Exchange an API key (form field ``apikey``, as the client sends it, or JSON) for a
    bearer token."""
    data = json_body() if request.is_json else request.form
    body = schemas.load(schemas.TokenRequest(), data)
    return jsonify(get_registry().auth.issue_token(body["apikey"]))
