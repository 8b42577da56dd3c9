"""Connect the stock ``qiskit-ibm-runtime`` client to a QRS server.

This only sets the knobs README's "Connecting" section documents (``IAM_URL``,
``QISKIT_FUNCTIONS_EXPERIMENTAL``, a CRN-shaped instance and a URL resolver); users may
equally set them by hand. It also arms the key-leak guard (``qrs.keyguard``): without
``IAM_URL`` the client sends its API key to IBM Cloud's IAM, so after ``connect`` the
client of this process may reach only the QRS host (and loopback).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

from . import keyguard
from .hosts import public_names

#: The CRN of the server's instance with the default ``QRS_INSTANCE_NAME``
#: (``Config.instance_crn``); the server accepts any instance in requests.
INSTANCE = "crn:v1:qrs:public:quantum-computing:us-east:a/qrs:qrs::"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bypass_proxies(host: str) -> None:
    """Add ``host`` to ``NO_PROXY``/``no_proxy``: requests applies proxy variables before a
    session's own settings, so a corporate ``HTTPS_PROXY`` would otherwise carry the QRS
    traffic (and the key) to the proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e.strip() for e in os.environ.get(name, "").split(",") if e.strip()]
        if host not in entries:
            os.environ[name] = ",".join([*entries, host])


def connect(
    url: str = "http://127.0.0.1:8000", token: str = "qrs", guard: bool = True, **kwargs: Any
):
    """A ``QiskitRuntimeService`` talking to the QRS server at ``url``.

    Sets ``IAM_URL`` (process-wide) before the client exists, so the key goes to QRS's
    token endpoint. ``guard=False`` leaves the key-leak guard unarmed, for a process that
    must also talk to IBM's real service (better: run those tests in another process).
    """
    from qiskit_ibm_runtime import QiskitRuntimeService

    base = url.rstrip("/")
    host = urlsplit(base).hostname or ""
    os.environ["IAM_URL"] = base
    os.environ["QISKIT_FUNCTIONS_EXPERIMENTAL"] = "1"
    _bypass_proxies(host)
    if guard:  # the host, and the names the client derives from it (qrs/hosts.py)
        keyguard.arm(*([host] if _is_address(host) else public_names(host)))
    return QiskitRuntimeService(
        channel="ibm_quantum_platform",
        token=token,
        url=base,
        instance=INSTANCE,
        url_resolver=lambda u, *_: u.rstrip("/") + "/api/v1",
        **kwargs,
    )
