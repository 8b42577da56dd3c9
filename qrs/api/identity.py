"""``POST /identity/token``: the IAM token exchange the client performs first.

The client reads ``access_token`` as a JWT (without checking its signature) for its
expiry, so the token is a real HS256 JWT; the server does check the signature.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..registry import get_registry

bp = Blueprint("identity", __name__)


@bp.post("/identity/token")
def token():
    """Exchange an API key (form field ``apikey``) for a bearer token."""
    key = request.form.get("apikey") or (request.get_json(silent=True) or {}).get("apikey") or ""
    return jsonify(get_registry().auth.issue_token(key))
