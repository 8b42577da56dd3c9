"""The public names of a deployment and the nginx site rendered for them (no nginx here:
tests/test_nginx.py runs the site for real)."""

from __future__ import annotations

import re

import pytest

from qrs.config import Config
from qrs.hosts import public_names, request_host, served_names
from qrs.nginx import SiteError, render_site


def test_names_the_client_derives_from_the_account_url():
    assert public_names("QRS.lab.example.") == [
        "qrs.lab.example", "iam.qrs.lab.example", "quantum.qrs.lab.example",
        "api.global-search-tagging.qrs.lab.example", "globalcatalog.qrs.lab.example"]
    assert public_names("") == [] and served_names("", "iam.cloud.ibm.com") == []
    assert served_names("h", "iam.cloud.ibm.com, h")[-1] == "iam.cloud.ibm.com"
    assert request_host({"HTTP_HOST": "GlobalCatalog.h:443"}) == "globalcatalog.h"
    assert request_host({"HTTP_HOST": "[::1]:8000"}) == "[::1]"


def test_site_has_every_name_the_certificate_and_no_unfilled_field():
    site = render_site(Config(public_host="qrs.lab.example", port=8123,
                              tls_cert="/c.pem", tls_key="/k.pem",
                              monitoring_allow="10.0.0.0/8, 127.0.0.1"))
    assert "server_name qrs.lab.example iam.qrs.lab.example" in site
    assert "ssl_certificate     /c.pem;" in site and "server 127.0.0.1:8123;" in site
    assert "    10.0.0.0/8 1;" in site and "return 308 https://$host$request_uri;" in site
    assert re.search(r"\$\{QRS_\w+\}", site) is None  # every field filled


def test_site_refuses_settings_it_cannot_serve():
    with pytest.raises(SiteError, match="QRS_PUBLIC_HOST"):
        render_site(Config())
    with pytest.raises(SiteError, match="QRS_MONITORING_ALLOW.*'lan'"):
        render_site(Config(public_host="h", monitoring_allow="lan"))
