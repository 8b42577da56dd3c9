"""The nginx site for a deployment, rendered from ``deploy/nginx/qrs.conf`` and ``Config``.

The template's ``${QRS_...}`` fields come from the same settings as the server, so one
``/etc/qrs/qrs.env`` describes both: the public host and the names derived from it
(``hosts.served_names``), the certificate, gunicorn's address, the monitoring addresses.
The rate limits have defaults here that a caller may override (``qrs nginx-site --set``).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from string import Template

from .config import Config
from .hosts import served_names

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "qrs.conf"

#: Per client address. The stock client asks for a token about once an hour and submits
#: jobs one call each; bursts above these are a script gone wrong or a guessing attack.
RATE_DEFAULTS = {
    "QRS_TOKEN_RATE": "10r/m",
    "QRS_TOKEN_BURST": "20",
    "QRS_JOBS_RATE": "20r/s",
    "QRS_JOBS_BURST": "200",
    "QRS_CONN_LIMIT": "64",
}


class SiteError(ValueError):
    """The settings cannot make a valid site (no public host, a bad address)."""


def monitoring_geo(allow: str) -> str:
    """``geo`` entries (``  127.0.0.1 1;``) for a comma-separated list of addresses or
    networks; each is checked, so a typo is an error here rather than in ``nginx -t``."""
    lines = []
    for item in (part.strip() for part in allow.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SiteError(
                f"QRS_MONITORING_ALLOW: {item!r} is not an address or network."
            ) from None
        lines.append(f"    {item} 1;")
    return "\n".join(lines)


def render_site(config: Config, **overrides: str) -> str:
    """The site file for ``config`` (``overrides``: template fields, e.g. rate limits)."""
    names = served_names(config.public_host, config.extra_names)
    if not names:
        raise SiteError(
            "Set QRS_PUBLIC_HOST to the name users put in their account url "
            "(e.g. qrs.lab.example); the site serves it and the names derived "
            "from it."
        )
    upstream_host = f"[{config.host}]" if ":" in config.host else config.host
    fields = {
        "QRS_PUBLIC_HOST": names[0],
        "QRS_SERVER_NAMES": " ".join(names),
        "QRS_TLS_CERT": config.tls_cert,
        "QRS_TLS_KEY": config.tls_key,
        "QRS_UPSTREAM": f"{upstream_host}:{config.port}",
        "QRS_MONITORING_GEO": monitoring_geo(config.monitoring_allow),
        **RATE_DEFAULTS,
        **overrides,
    }
    text = Template(TEMPLATE.read_text()).safe_substitute(fields)
    missing = sorted(set(re.findall(r"\$\{(QRS_\w+)\}", text)))
    if missing:
        raise SiteError(f"The nginx template has fields with no value: {', '.join(missing)}.")
    return text
