"""The host names the stock client derives from an account's ``url``, and routing by Host.

Given ``url="https://qrs.lab.example"`` and no ``IAM_URL`` or ``url_resolver``, the client
calls four names built from the url's host (the port is dropped):

* ``iam.<host>``: the token exchange (``POST /identity/token``);
* ``quantum.<host>/api/v1`` — ``<region>.quantum.<host>`` outside us-east — the API;
* ``api.global-search-tagging.<host>``: IBM Cloud Global Search (instance lookup);
* ``globalcatalog.<host>/api/v1``: IBM Cloud Global Catalog (the instance's plan).

One app serves them all. The token endpoint and the API are served on every name; the two
IBM Cloud services get a path prefix from ``HostRouter`` (Global Catalog's ``/api/v1/<id>``
would otherwise meet the API's ``/api/v1``), and are also reachable by those prefixes on any
name, which is what ``GLOBAL_SEARCH_URL`` / ``GLOBAL_CATALOG_URL`` may point at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: First labels of the Host names answered by the IBM Cloud services, and their path prefix.
CLOUD_PREFIXES = {
    "api.global-search-tagging.": "/cloud/search",
    "globalcatalog.": "/cloud/catalog",
}
#: Labels in front of the public host that the client calls (``quantum.`` carries the API).
SERVICE_LABELS = ("iam", "quantum", "api.global-search-tagging", "globalcatalog")


def public_names(public_host: str) -> list[str]:
    """Every name a deployment at ``public_host`` must answer (DNS, certificate, nginx,
    trusted-host checks); empty when no public host is configured."""
    host = public_host.strip().lower().rstrip(".")
    return [host, *(f"{label}.{host}" for label in SERVICE_LABELS)] if host else []


def served_names(public_host: str, extra_names: str = "") -> list[str]:
    """``public_names`` plus the configured extra names (``QRS_EXTRA_NAMES``), in order."""
    extra = [name.strip().lower() for name in extra_names.replace(",", " ").split()]
    names = public_names(public_host)
    return names + [name for name in extra if name not in names] if names else []


def request_host(environ: dict[str, Any]) -> str:
    """The request's host name, lower-cased, without a port."""
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").lower()
    if host.startswith("["):  # [::1]:443
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class HostRouter:
    """WSGI middleware: requests for an IBM Cloud service name get its path prefix."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        host = request_host(environ)
        for label, prefix in CLOUD_PREFIXES.items():
            if host.startswith(label):
                environ["PATH_INFO"] = prefix + environ.get("PATH_INFO", "")
                break
        return self.app(environ, start_response)
