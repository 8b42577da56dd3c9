"""The IBM Cloud calls the client makes to find its service instance, answered for QRS.

A service created without a CRN (``QiskitRuntimeService()`` from a saved account with no
instance, or ``instance="qrs"``) asks IBM Cloud Global Search for every
``service_name:quantum-computing`` resource, keeps those whose ``doc.extensions`` is
non-empty, and reads each one's plan from Global Catalog (``overview_ui.en.display_name``
and ``metadata.pricing.type``): ``accounts/account.py: Account.list_instances`` through the
IBM Platform SDK's ``GlobalSearchV2.search`` (``POST /v3/resources/search``) and
``GlobalCatalogV1.get_catalog_entry`` (``GET /api/v1/<id>``). QRS has one instance, whose
CRN (``Config.instance_crn``) routes the client to ``quantum.<host>/api/v1``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..errors import NotFound
from ..registry import get_registry
from .common import authenticate

bp = Blueprint("cloud", __name__)
bp.before_request(authenticate)  # the SDK sends the IAM bearer token from /identity/token

#: The catalog id of the plan of QRS's instance. ``free`` comes first in the client's
#: order of pricing types, and the plan reads as ``open``, so ``plans_preference=["open"]``
#: finds it too.
PLAN_ID = "qrs-open-plan"
PLAN = {"display_name": "Open", "pricing_type": "free"}


@bp.post("/cloud/search/v3/resources/search")
def search():
    """Global Search: QRS's one ``quantum-computing`` instance, in one page (no cursor).

    The query, fields and paging parameters are accepted and not needed: there is one
    instance whatever the query.
    """
    config = get_registry().config
    item = {
        "crn": config.instance_crn,
        "name": config.instance_name,
        "service_plan_unique_id": PLAN_ID,
        "tags": [],
        "doc": {"extensions": {"qrs": {"backends": "all"}}},
    }
    return jsonify({"items": [item], "limit": 100, "search_cursor": None})


@bp.get("/cloud/catalog/api/v1/<entry_id>")
def catalog_entry(entry_id: str):
    """Global Catalog: the plan of QRS's instance (404 for any other id)."""
    if entry_id != PLAN_ID:
        raise NotFound(
            f"Catalog entry '{entry_id}' was not found; this server's only plan is '{PLAN_ID}'."
        )
    return jsonify(
        {
            "id": PLAN_ID,
            "name": "qrs-open",
            "kind": "plan",
            "active": True,
            "overview_ui": {"en": {"display_name": PLAN["display_name"]}},
            "metadata": {"pricing": {"type": PLAN["pricing_type"]}},
        }
    )
