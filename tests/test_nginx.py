"""The shipped deployment for real: nginx with TLS on ports 80/443 in front of gunicorn
with several workers, the stock client connecting through DNS names (/etc/hosts) with
nothing but a saved account.

Needs root (ports 80/443, /etc/hosts), as CI has; installs nginx with apt-get if it is
missing, and skips, saying why, only when that is impossible. The CA is a throw-away one
made here; the client trusts it through ``REQUESTS_CA_BUNDLE`` (trust, not routing: a lab
with a publicly trusted certificate needs nothing). nginx is stopped and /etc/hosts
restored whatever happens. Run with ``-s`` to see the IBM docs program's output.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys

import pytest
import requests

from qrs.config import Config
from qrs.hosts import served_names
from qrs.nginx import render_site

from .support.payloads import SIGMAS, assert_binomial
from .nginx_helpers import (
    NginxProcess,
    ensure_nginx,
    hosts_entries,
    loopback_alias_works,
    machine_lock,
    make_certificates,
    port_free,
)
from .support.server import ROOT, ServerProcess

HOST = "qrs.lab.example"
KEY = "alice-lab-key-0123456789"
#: The stock client asks IBM's IAM for the bearer tokens of its API calls, whatever the
#: account's url (``api/auth.py: CloudAuth``); an isolated lab answers that name too.
IBM_IAM = "iam.cloud.ibm.com"
#: Low limits so the rate-limit test needs few requests; the client tests stay under them.
RATES = {"QRS_TOKEN_RATE": "1r/m", "QRS_TOKEN_BURST": "40",
         "QRS_JOBS_RATE": "1r/m", "QRS_JOBS_BURST": "15", "QRS_CONN_LIMIT": "64"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: nginx binds ports "
                                "80 and 443 and the test adds /etc/hosts names")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    binary = ensure_nginx()
    if binary is None:
        pytest.skip("nginx is not installed and 'apt-get install -y nginx' failed")
    folder = tmp_path_factory.mktemp("deploy")
    with contextlib.ExitStack() as stack:
        stack.enter_context(machine_lock())
        busy = [port for port in (80, 443) if not port_free(port)]
        if busy:
            pytest.skip(f"ports {busy} are in use by another process on this machine")
        names = served_names(HOST, IBM_IAM)
        tls = make_certificates(folder, names)
        keys = folder / "keys"
        keys.write_text(f"alice:{KEY}\n")
        keys.chmod(0o600)
        server = ServerProcess(folder / "data", gunicorn=True, workers=3, env={
            "QRS_PUBLIC_HOST": HOST, "QRS_EXTRA_NAMES": IBM_IAM,
            "QRS_API_KEYS_FILE": str(keys)}).start(timeout=180)
        stack.callback(server.stop)
        config = Config(public_host=HOST, extra_names=IBM_IAM, port=server.port,
                        tls_cert=str(tls["cert"]), tls_key=str(tls["key"]))
        nginx = NginxProcess(binary, folder / "nginx", render_site(config, **RATES))
        checked = nginx.check()
        assert checked.returncode == 0, checked.stderr
        stack.enter_context(hosts_entries([n for n in names if n != IBM_IAM]))
        stack.callback(nginx.stop)
        nginx.start(f"https://{HOST}/health", verify=str(tls["ca"]))
        yield {"server": server, "nginx": nginx, "ca": str(tls["ca"]), "checked": checked,
               "folder": folder}


def run_docs_program(deployment, extra_env: dict[str, str]) -> tuple[dict, str]:
    """tests/ibm_docs_program.py in a fresh process: empty HOME, no QRS or qiskit
    variables, only the CA to trust (and ``extra_env``)."""
    home = deployment["folder"] / f"home-{len(list(deployment['folder'].glob('home-*')))}"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "REQUESTS_CA_BUNDLE": deployment["ca"], **extra_env}
    done = subprocess.run([sys.executable, "-m", "tests.ibm_docs_program", f"https://{HOST}",
                           KEY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, output + deployment["nginx"].log()
    return json.loads(done.stdout.strip().splitlines()[-1]), output


def check_program_result(summary: dict) -> None:
    counts = summary["counts"]
    shots = sum(counts.values())
    assert shots == 1024  # the Sampler's default
    correlated = counts.get("00", 0) + counts.get("11", 0)
    assert correlated > 0.8 * shots, counts  # noise flips a few percent of outcomes
    assert_binomial(counts.get("00", 0), correlated, 0.5)
    assert summary["spans"] == 1
    assert summary["evs_shape"] == []  # a 0-d array, as IBM returns
    assert 0.8 - SIGMAS * summary["stds"] <= summary["evs"] <= 1.0 + SIGMAS * summary["stds"]
    assert summary["instance"] == Config().instance_crn


def test_the_site_passes_nginx_t(deployment):
    assert "syntax is ok" in deployment["checked"].stderr


def test_ibm_docs_program_runs_with_only_a_saved_account(deployment):
    """No environment variable at all: where the lab's DNS also answers IBM's IAM name
    (README, "An isolated lab"), the stock client needs nothing but the saved account."""
    with hosts_entries([IBM_IAM]):
        summary, output = run_docs_program(deployment, {})
    check_program_result(summary)
    assert ">>> Job ID:" in output and "Unable to retrieve IBM Cloud access token" not in output


def test_ibm_docs_program_runs_with_iam_url_on_a_connected_lab(deployment):
    """Where IBM Cloud stays reachable, one variable sends the client's tokens to QRS."""
    summary, output = run_docs_program(deployment, {"IAM_URL": f"https://iam.{HOST}"})
    check_program_result(summary)


def test_http_redirects_to_https_which_sends_hsts(deployment):
    plain = requests.get(f"http://quantum.{HOST}/api/v1/backends", allow_redirects=False,
                         timeout=30)
    assert plain.status_code == 308
    assert plain.headers["Location"] == f"https://quantum.{HOST}/api/v1/backends"
    secure = requests.get(f"https://{HOST}/health", verify=deployment["ca"], timeout=30)
    assert secure.status_code == 200
    assert "max-age=" in secure.headers["Strict-Transport-Security"]
    token = requests.post(f"https://iam.{HOST}/identity/token", data={"apikey": KEY},
                          verify=deployment["ca"], timeout=30)
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"


def _https(source: str, method: str, path: str, ca: str, body: str | None = None) -> int:
    """One request to nginx sent from the loopback address ``source``."""
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(HOST, 443, timeout=30, context=context,
                                       source_address=(source, 0))
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_operations_endpoints_answer_monitoring_addresses_only(deployment):
    if not loopback_alias_works("127.0.0.2"):
        pytest.skip("this machine cannot send from 127.0.0.2")
    ca = deployment["ca"]
    for path in ("/health", "/ready", "/metrics"):
        assert _https("127.0.0.1", "GET", path, ca) == 200, path  # a monitoring address
        assert _https("127.0.0.2", "GET", path, ca) == 403, path  # anyone else
    assert _https("127.0.0.2", "GET", "/backends", ca) == 401  # the API itself is reachable


def test_token_exchange_and_job_submission_are_rate_limited(deployment):
    """Past the burst, nginx answers 429 at once (from an address the client tests do not
    use, so their quota is untouched)."""
    if not loopback_alias_works("127.0.0.3"):
        pytest.skip("this machine cannot send from 127.0.0.3")
    ca = deployment["ca"]
    token_burst = int(RATES["QRS_TOKEN_BURST"])
    jobs_burst = int(RATES["QRS_JOBS_BURST"])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda _: _https("127.0.0.3", "POST", "/identity/token", ca,
                                                f"apikey={KEY}"), range(token_burst + 10)))
        jobs = list(pool.map(lambda _: _https("127.0.0.3", "POST", "/api/v1/jobs", ca, "{}"),
                             range(jobs_burst + 10)))
    # 1r/m: at most the burst and one more pass within a minute.
    assert tokens.count(429) >= 9 and set(tokens) <= {200, 429}, tokens
    assert jobs.count(429) >= 9 and set(jobs) <= {401, 429}, jobs
    listing = _https("127.0.0.3", "GET", "/api/v1/jobs", ca)
    assert listing == 401  # GET /jobs is not limited by the submission rate
