"""HTTP-level defences every request and answer passes: the Host check, response headers,
and whether cookies are marked ``Secure``.

**Host check (DNS rebinding).** A web page can point a name it controls at 127.0.0.1 and
then talk to a loopback QRS from the victim's browser, in open mode as the shared admin
user. Its requests carry that name in ``Host``, so QRS answers only to names it knows:
``localhost``, this machine's host name, the bind address, ``QRS_PUBLIC_HOST`` and
``QRS_EXTRA_NAMES`` (the names the nginx site serves), every name in
``QRS_TRUSTED_HOSTS`` (``*`` turns the check off; ``*.example.org`` matches subdomains)
and, for each of those, the names the stock client derives from a service URL
(``hosts.public_names``: ``iam.``, ``quantum.`` — also ``<region>.quantum.`` —,
``api.global-search-tagging.``, ``globalcatalog.``). IP
literals always pass: a rebinding attack needs a name, and users on the LAN may connect
by address.

**Headers.** ``X-Content-Type-Options: nosniff`` (a result or log is never run as a
script or page) and ``Content-Security-Policy: frame-ancestors 'none'`` with its older
twin ``X-Frame-Options: DENY`` (the dashboard cannot be framed for clickjacking).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from flask import Flask, Response, request

from .config import Config
from .errors import InvalidInput
from .hosts import public_names, served_names

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def _bare_host(header: str) -> str:
    """``Host`` without its port, lower-cased: ``[::1]:8000`` → ``::1``."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` values this server answers to (see the module docstring)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.any = False
        self.exact: set[str] = set()
        self.suffixes: list[str] = []
        for name in (n.strip().lower().rstrip(".") for n in names):
            if not name:
                continue
            if name == "*":
                self.any = True
            elif name.startswith("*."):
                self.suffixes.append(name[1:])
            else:  # and what the client derives from it, regional API names included
                self.exact.update(public_names(name))
                self.suffixes.append(f".quantum.{name}")

    @classmethod
    def from_config(cls, config: Config) -> HostPolicy:
        """Loopback names, this machine's name, the bind address, the public names
        (``QRS_PUBLIC_HOST``, ``QRS_EXTRA_NAMES``) and ``QRS_TRUSTED_HOSTS``."""
        names = [
            "localhost",
            socket.gethostname(),
            config.host,
            *served_names(config.public_host, config.extra_names),
            *config.trusted_hosts.split(","),
        ]
        return cls(names)

    def allows(self, header: str) -> bool:
        """Whether a request with this ``Host`` header may be answered."""
        host = _bare_host(header).rstrip(".")
        return (
            self.any
            or not host
            or _is_ip(host)
            or host in self.exact
            or any(host.endswith(suffix) for suffix in self.suffixes)
        )


def secure_cookies(config: Config) -> bool:
    """Whether the dashboard cookie gets ``Secure``: ``QRS_COOKIE_SECURE=1``/``0``, or
    (``auto``) when the request came over TLS. Behind nginx, gunicorn reports TLS from
    ``X-Forwarded-Proto`` sent by an address in its ``forwarded_allow_ips`` (loopback)."""
    if config.cookie_secure == "auto":
        return request.is_secure
    return config.cookie_secure == "1"


def init_app(app: Flask, config: Config) -> None:
    """Install the Host check (first of the app's ``before_request`` hooks) and headers."""
    policy = HostPolicy.from_config(config)

    @app.before_request
    def check_host() -> None:
        host = request.headers.get("Host", "")
        if not policy.allows(host):
            raise InvalidInput(
                f"This server does not answer to the host name {_bare_host(host)[:100]!r}. "
                "Its operator lists the names clients use in QRS_TRUSTED_HOSTS "
                "(protection against DNS rebinding)."
            )

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
