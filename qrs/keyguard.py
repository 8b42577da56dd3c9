"""Key-leak guard: once armed, the Qiskit client may reach only the QRS hosts it was given.

The danger: ``qiskit-ibm-runtime`` exchanges the API key (the ``token=``) for a bearer
token at IBM Cloud's IAM, ``https://iam.cloud.ibm.com``, unless the ``IAM_URL`` variable
points elsewhere. A stock client configured by hand for QRS but without ``IAM_URL`` —
or a test that builds its own ``QiskitRuntimeService`` — sends that key to IBM's
servers; with a real IBM key in the environment (``QISKIT_IBM_TOKEN``, a saved account)
that is a real credential leaving the machine.

``qrs.client.connect()`` and the pytest fixtures set ``IAM_URL`` and then call ``arm()``.
From then on, in this process, every host-name lookup (``socket.getaddrinfo``: every
connection ``requests``/``urllib3``/``http.client`` open starts with one) made by the
client's own code — any frame of ``qiskit_ibm_runtime``, ``ibm_cloud_sdk_core`` or
``ibm_platform_services`` on the stack — for a host other than loopback or an armed QRS
host raises ``KeyLeakBlocked`` before any byte is sent, and is remembered in
``blocked()``. The rest of the process is untouched. This is a PEP 578 audit hook, so it
sees every connection of the client whatever session, adapter or proxy setting made it;
it cannot see work the client hands to threads whose code is not the client's own.
Audit hooks cannot be removed: ``disarm()`` lets everything through again.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from types import FrameType
from typing import Any

#: Top-level packages whose connections are guarded: the client and its IBM Cloud SDKs.
CLIENT_PACKAGES = frozenset({"qiskit_ibm_runtime", "ibm_cloud_sdk_core", "ibm_platform_services"})


class KeyLeakBlocked(RuntimeError):
    """The client tried to reach a host other than QRS (not an ``OSError``, so that no
    HTTP library retries it or hides it behind a connection error)."""


_lock = threading.Lock()
_allowed: set[str] = set()
_blocked: list[str] = []
_state = {"hooked": False, "armed": False}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normal(host: Any) -> str:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return str(host or "").strip("[]").rstrip(".").lower()


def _from_client() -> bool:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).partition(".")[0] in CLIENT_PACKAGES:
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple) -> None:
    if event != "socket.getaddrinfo" or not _state["armed"]:
        return
    host = _normal(args[0])
    if not host or _is_loopback(host) or host in _allowed or not _from_client():
        return
    target = f"{host}:{args[1]}"
    with _lock:
        _blocked.append(target)
    raise KeyLeakBlocked(
        f"QRS key-leak guard: the Qiskit client tried to connect to {target}, which is not "
        f"the QRS server ({', '.join(sorted(_allowed)) or 'loopback'}). Nothing was sent. "
        "A client without IAM_URL sends its API key to IBM Cloud (iam.cloud.ibm.com): use "
        "qrs.client.connect(), or set IAM_URL to the QRS URL before creating the service."
    )


def arm(*hosts: str) -> None:
    """Let the client reach only loopback and ``hosts`` (names or addresses) from now on."""
    with _lock:
        _allowed.update(_normal(h) for h in hosts if h)
        if not _state["hooked"]:
            sys.addaudithook(_audit)
            _state["hooked"] = True
        _state["armed"] = True


def disarm() -> None:
    """Let the client reach any host again (the hook stays, doing nothing)."""
    with _lock:
        _state["armed"] = False
        _allowed.clear()


def armed() -> bool:
    return _state["armed"]


def blocked() -> list[str]:
    """Every ``host:port`` the guard refused in this process, oldest first."""
    with _lock:
        return list(_blocked)
