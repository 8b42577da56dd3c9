"""Issue 17's findings about keys, the dashboard, files, headers, hosts and the systemd
unit, each checked with the request or action the audit used.

In-process checks use the real app (real store, the real ``qrs`` command on its data
directory); the ``served`` module fixture is real gunicorn, as ``make run`` starts it,
for what only a served process shows (umask, forwarded TLS, raw Host headers).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from qrs import create_app
from qrs.auth import hash_key, load_secret
from qrs.config import Config
from qrs.errors import StartupError

from .support.payloads import circuit, sampler_job
from .support.server import ROOT, ServerProcess

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"


def qrs_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real ``qrs`` command on ``data_dir``."""
    env = {**os.environ, "QRS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "qrs.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def message(response) -> str:
    return response.get_json()["errors"][0]["message"]


@pytest.fixture
def make_app(tmp_path):
    """Apps on one data directory; stopped after the test."""
    apps = []

    def make(**changes):
        config = Config(data_dir=str(tmp_path / "data"), executor_threads=1,
                        start_runner=False).replace(**changes)
        apps.append(create_app(config))
        return apps[-1]
    yield make
    for app in apps:
        app.extensions["qrs"].runner.stop()
        app.extensions["qrs"].validator.close()


ANYONE = {"Authorization": "Bearer anything"}


# ------------------------------------------------------- item 1: sticky key mode
def test_revoking_the_last_key_keeps_key_mode(make_app, tmp_path):
    """After ``qrs keys revoke alice`` (the only key) the server must not fall open."""
    client = make_app().test_client()
    assert client.get("/jobs", headers=ANYONE).status_code == 200  # open mode
    created = qrs_cli(tmp_path / "data", "keys", "create", "--user", "alice")
    key = created.stdout.split()[-1]
    assert client.get("/jobs", headers=ANYONE).status_code == 401
    assert client.post("/identity/token", data={"apikey": key}).status_code == 200
    assert qrs_cli(tmp_path / "data", "keys", "revoke", "alice").returncode == 0
    answer = client.get("/jobs", headers=ANYONE)
    assert answer.status_code == 401 and "Invalid access token" in message(answer)
    assert client.post("/identity/token", data={"apikey": key}).status_code == 401
    login = client.get("/ui")
    assert login.status_code == 302 and "/ui/login" in login.headers["Location"]
    restarted = make_app().test_client()  # a restart does not reopen it either
    assert restarted.get("/jobs", headers=ANYONE).status_code == 401


@pytest.mark.parametrize("kind", ["missing", "unreadable"])
def test_configured_keys_file_that_cannot_be_read_fails_closed(make_app, tmp_path, qrs_log,
                                                              kind):
    keys_file = tmp_path / "keys.txt"
    if kind == "unreadable":
        keys_file.mkdir()  # reading a directory fails, even for root
    client = make_app(api_keys_file=str(keys_file)).test_client()
    errors = [r.getMessage() for r in qrs_log.records if r.levelno == logging.ERROR]
    assert any("QRS_API_KEYS_FILE" in m and "cannot be read" in m and "key mode" in m
               for m in errors), errors
    assert client.get("/jobs", headers=ANYONE).status_code == 401
    assert client.post("/identity/token", data={"apikey": "x"}).status_code == 401
    assert client.get("/ui").status_code == 302


def test_qrs_auth_setting(make_app, qrs_log):
    keys = make_app(auth="keys").test_client()
    answer = keys.get("/jobs", headers=ANYONE)  # no key exists, still key mode
    assert answer.status_code == 401
    registry = keys.application.extensions["qrs"]
    registry.store.add_api_key("alice", hash_key("k"))
    opened = make_app(auth="open").test_client()
    assert opened.get("/jobs", headers=ANYONE).status_code == 200
    assert any("QRS_AUTH=open" in r.getMessage() for r in qrs_log.records)
    with pytest.raises(ValueError, match="QRS_AUTH"):
        Config.from_env({"QRS_AUTH": "sometimes"})


# ------------------------------------------------------- item 12: the keys file
def test_keys_file_skips_empty_keys_and_accepts_hashed_ones(make_app, tmp_path, qrs_log):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# user:key[:admin]\nalice:\n:no-user\n"
                         f"bob:sha256:{hash_key('bob-secret-key')}\n"
                         f"root:sha256:{hash_key('root-key').upper()}:admin\n")
    keys_file.chmod(0o600)
    client = make_app(api_keys_file=str(keys_file)).test_client()
    empty = client.post("/identity/token", data={"apikey": ""})
    assert empty.status_code == 401, empty.get_json()
    assert client.post("/identity/token", data={"apikey": "alice"}).status_code == 401
    for key, user in (("bob-secret-key", "bob"), ("root-key", "root")):
        token = client.post("/identity/token", data={"apikey": key}).get_json()
        assert token["access_token"], user
    skipped = [r.getMessage() for r in qrs_log.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and "line 2" in skipped[0] and "line 3" in skipped[1]
    assert not any("readable by other users" in r.getMessage() for r in qrs_log.records)


def test_keys_file_readable_by_others_is_warned_about(make_app, tmp_path, qrs_log):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("dave:dave-key\n")
    keys_file.chmod(0o644)
    make_app(api_keys_file=str(keys_file))
    warnings = [r.getMessage() for r in qrs_log.records if r.levelno == logging.WARNING]
    assert any("readable by other users" in w and "644" in w for w in warnings), warnings


def test_qrs_keys_hash_makes_a_file_line(tmp_path):
    done = qrs_cli(tmp_path, "keys", "hash", "some-key")
    assert done.stdout.strip() == f"sha256:{hash_key('some-key')}"


# ------------------------------------------------------- item 8: open redirect
def admin_app(make_app):
    app = make_app()
    app.extensions["qrs"].store.add_api_key("root", hash_key(ADMIN_KEY), admin=True)
    return app


@pytest.mark.parametrize("target", ["/\t/evil.example", "//evil.example",
                                    "/%09/evil.example", "https://evil.example/ui",
                                    "/\\evil.example", "/ui\\..\\x", "/jobs", "/ui//evil",
                                    " /ui"])
def test_login_redirects_only_to_dashboard_pages(make_app, target):
    client = admin_app(make_app).test_client()
    page = client.get("/ui/login", query_string={"next": target})
    assert page.status_code == 200
    answer = client.post("/ui/login", data={"apikey": ADMIN_KEY, "next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/ui", answer.headers["Location"]


def test_login_redirect_keeps_a_dashboard_path(make_app):
    client = admin_app(make_app).test_client()
    answer = client.post("/ui/login", data={"apikey": ADMIN_KEY,
                                            "next": "/ui/jobs/d123?status=Failed"})
    assert answer.headers["Location"] == "/ui/jobs/d123?status=Failed"


def test_open_mode_login_redirect_is_refused_too(make_app):
    answer = make_app().test_client().get("/ui/login?next=/%09/evil.example")
    assert answer.status_code == 302 and answer.headers["Location"] == "/ui"


# ------------------------------------------------------- item 5: Secure cookie
def cookie(answer) -> str:
    return next(v for k, v in answer.headers.items() if k == "Set-Cookie")


def test_dashboard_cookie_is_secure_over_tls(make_app):
    client = admin_app(make_app).test_client()
    over_tls = client.post("/ui/login", data={"apikey": ADMIN_KEY},
                           base_url="https://localhost")
    assert re.search(r"; Secure", cookie(over_tls)), cookie(over_tls)
    assert "HttpOnly" in cookie(over_tls) and "SameSite=Strict" in cookie(over_tls)
    plain = client.post("/ui/login", data={"apikey": ADMIN_KEY})
    assert "Secure" not in cookie(plain)
    forced = make_app(cookie_secure="1").test_client()  # same data directory, same key
    assert "Secure" in cookie(forced.post("/ui/login", data={"apikey": ADMIN_KEY}))


# ------------------------------------------------------- item 9: the signing secret
def test_secret_creation_race_never_yields_an_empty_secret(tmp_path):
    """Eight workers starting at once, fifty times: all read the same complete secret
    (before the fix, about four rounds in ten gave some worker an empty one)."""
    for round_ in range(50):
        path = tmp_path / f"r{round_}" / "secret.key"
        path.parent.mkdir()
        barrier, secrets = threading.Barrier(8), []

        def start(barrier=barrier, secrets=secrets, path=path):
            barrier.wait()
            secrets.append(load_secret(path))
        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(secrets)) == 1 and len(secrets[0]) == 64, secrets
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_short_secret_is_refused_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_text("too-short\n")
    with pytest.raises(StartupError, match="9-byte signing secret; at least 32"):
        create_app(Config(data_dir=str(data), executor_threads=1, start_runner=False))
    done = qrs_cli(data, "serve", "--dev")
    assert done.returncode == 2 and "cannot start" in done.stderr and "32" in done.stderr


# ------------------------------------------------------- item 10: information leaks
def test_job_metrics_show_no_host_name_or_user_agent(make_app):
    client = make_app().test_client()
    job = client.post("/jobs", json=sampler_job([(circuit(),)])).get_json()["id"]
    text = client.get(f"/jobs/{job}/metrics", headers={"User-Agent": "probe-agent/1.0"}) \
        .get_data(as_text=True)
    assert "probe-agent" not in text and platform.node() not in text
    assert '"server"' not in text and '"caller"' not in text


@pytest.mark.parametrize("path", ["/health", "/jobs", "/ui", "/jobs/nope", "/docs",
                                  "/backends/fake_manila/status"])
def test_security_headers_on_every_answer(make_app, path):
    answer = make_app().test_client().get(path, headers=ANYONE)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_ready_names_the_store_error_without_its_text(make_app, monkeypatch):
    """A store failure is reported by type; its text (paths, SQL) only in the log. The
    failure is injected: a database that fails on demand cannot be made portably."""
    app = make_app()

    def broken():
        raise sqlite3.OperationalError("unable to open database /very/private/path.db")
    monkeypatch.setattr(app.extensions["qrs"].store, "ping", broken)
    answer = app.test_client().get("/ready")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["store_error"] == "OperationalError"
    assert "/very/private" not in answer.get_data(as_text=True)


# ------------------------------------------------------- item 11: Host check
@pytest.mark.parametrize("host, trusted, allowed", [
    ("rebind.attacker.example", "", False),
    ("rebind.attacker.example:8000", "", False),
    ("localhost:8000", "", True), ("127.0.0.1:8000", "", True), ("[::1]:8000", "", True),
    ("192.168.1.20:8000", "", True), (socket.gethostname(), "", True),
    ("qrs.lab.example", "qrs.lab.example", True),
    ("iam.qrs.lab.example", "qrs.lab.example", True),
    ("quantum.qrs.lab.example", "qrs.lab.example", True),
    ("api.global-search-tagging.qrs.lab.example", "qrs.lab.example", True),
    ("globalcatalog.qrs.lab.example:443", "qrs.lab.example", True),
    ("other.qrs.lab.example", "qrs.lab.example", False),
    ("iam.localhost", "", True), ("eu-de.quantum.qrs.lab.example", "qrs.lab.example", True),
    ("a.b.lab.example", "*.lab.example", True), ("lab.example.evil", "*.lab.example", False),
    ("anything.example", "*", True),
])
def test_host_check(make_app, host, trusted, allowed):
    answer = make_app(trusted_hosts=trusted).test_client().get("/health",
                                                               headers={"Host": host})
    if allowed:  # answered (the IBM Cloud names route elsewhere: no /health there)
        assert answer.status_code in (200, 404) and "QRS_TRUSTED_HOSTS" not in \
            answer.get_data(as_text=True), host
    else:
        assert answer.status_code == 400
        assert "QRS_TRUSTED_HOSTS" in message(answer) and "DNS rebinding" in message(answer)


# ------------------------------------------------------- served by gunicorn
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn as ``make run`` starts it, one worker, in key mode with one admin key.
    The test's own umask (022) made the data directory, as an older QRS would."""
    data = tmp_path_factory.mktemp("served") / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    server = ServerProcess(data, gunicorn=True, env={"QRS_NOISE": "0"}).start(timeout=180)
    key = qrs_cli(data, "keys", "create", "--user", "root", "--admin").stdout.split()[-1]
    yield server, key
    server.stop()


def raw_get(server: ServerProcess, host: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_served_host_check_refuses_a_rebinding_name(served):
    server, _ = served
    assert raw_get(server, b"rebind.attacker.example").startswith(b"HTTP/1.1 400")
    assert raw_get(server, b"127.0.0.1").startswith(b"HTTP/1.1 200")
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_served_cookie_is_secure_behind_a_tls_proxy(served):
    """nginx terminates TLS and says so in X-Forwarded-Proto; gunicorn trusts it from
    loopback (forwarded_allow_ips), so the cookie is marked Secure."""
    server, key = served
    behind = requests.post(server.url + "/ui/login", data={"apikey": key}, timeout=30,
                           allow_redirects=False, headers={"X-Forwarded-Proto": "https"})
    assert behind.status_code == 302 and "Secure" in behind.headers["Set-Cookie"]
    direct = requests.post(server.url + "/ui/login", data={"apikey": key}, timeout=30,
                           allow_redirects=False)
    assert "Secure" not in direct.headers["Set-Cookie"]


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_served_data_directory_is_private(served):
    """Folders 0700 (the pre-existing 0755 one too), every file owner-only."""
    server, key = served
    token = requests.post(server.url + "/identity/token", data={"apikey": key},
                          timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    job = requests.post(server.url + "/jobs", json=sampler_job([(circuit(),)]),
                        headers=headers, timeout=60).json()["id"]
    status = ""
    for _ in range(600):  # each poll is held until the job finishes (QRS_STATUS_WAIT_MS)
        status = requests.get(f"{server.url}/jobs/{job}", headers=headers,
                              timeout=30).json()["status"]
        if status in ("Completed", "Failed"):
            break
    assert status == "Completed"
    data = server.data_dir
    for folder in (data, data / "params", data / "results"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"qrs.sqlite3", "secret.key", f"{job}.json"}
    assert [p for p in files if not private(p)] == []


def test_cli_creates_private_files(tmp_path):
    data = tmp_path / "fresh"
    assert qrs_cli(data, "keys", "create", "--user", "eve").returncode == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert [p for p in data.rglob("*") if not private(p)] == []


# ------------------------------------------------------- item 13: systemd unit
UNIT = ROOT / "deploy" / "systemd" / "qrs.service"
GPU_DROP_IN = ROOT / "deploy" / "systemd" / "qrs-gpu.conf"


def directives(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_has_the_hardening():
    unit = directives(UNIT)
    expected = {"UMask": "0077", "CapabilityBoundingSet": "", "ProtectKernelTunables": "yes",
                "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
                "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
                "LockPersonality": "yes", "SystemCallFilter": "@system-service",
                "StateDirectoryMode": "0700", "NoNewPrivileges": "yes", "DevicePolicy": "closed"}
    for key, value in expected.items():
        assert unit.get(key) == [value], (key, unit.get(key))
    for key in ("MemoryMax", "MemoryHigh", "TasksMax", "RestrictAddressFamilies"):
        assert unit.get(key), key
    assert "QRS_AUTH=keys" in unit["Environment"]
    assert "char-nvidia* rw" in directives(GPU_DROP_IN)["DeviceAllow"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_unit_verifies(tmp_path):
    """``systemd-analyze verify`` with the GPU drop-in; paths that exist only on a
    deployed machine (/opt/qrs) point at stand-ins. It prints problems, rc stays 0."""
    text = UNIT.read_text().replace("/opt/qrs/.venv/bin/gunicorn", "/bin/true") \
        .replace("WorkingDirectory=/opt/qrs", f"WorkingDirectory={tmp_path}")
    (tmp_path / "qrs.service").write_text(text)
    (tmp_path / "qrs.service.d").mkdir()
    shutil.copy(GPU_DROP_IN, tmp_path / "qrs.service.d" / "gpu.conf")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "qrs.service")],
                          capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "qrs" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true",
                               str(tmp_path / "qrs.service")],
                              capture_output=True, text=True, timeout=60, check=False)
    exposure = re.search(r"Overall exposure level for qrs.service: ([\d.]+)", security.stdout)
    assert exposure and float(exposure.group(1)) <= 3.0, security.stdout[-500:]
    print(f"\n[systemd] exposure {exposure.group(1)} (main's unit: 8.5)")


def test_host_check_allows_the_public_names(make_app):
    """``QRS_PUBLIC_HOST`` and ``QRS_EXTRA_NAMES`` (the names the nginx site serves)."""
    client = make_app(public_host="qrs.lab.example", extra_names="iam.cloud.ibm.com") \
        .test_client()
    for host in ("qrs.lab.example", "iam.qrs.lab.example", "iam.cloud.ibm.com"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host
    assert client.get("/health", headers={"Host": "cloud.ibm.com"}).status_code == 400
