"""API keys, tokens and per-user isolation against a real server process.

The server starts in open mode; keys are then created with the real ``qrs keys`` command
on the same data directory while it runs (no restart), and users connect with the stock
client. Cross-user access is probed on every job and session endpoint over HTTP.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import jwt
import pytest
import requests
from qiskit_ibm_runtime import SamplerV2, Session

from qrs import create_app
from qrs.config import Config

from .conftest import connect
from .support.payloads import bell, isa
from .support.server import ROOT, ServerProcess


def qrs_cli(data_dir, *args: str) -> str:
    """Run the real ``qrs`` command against a data directory; return its stdout."""
    env = {**os.environ, "QRS_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "qrs.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def create_key(data_dir, user: str, admin: bool = False) -> str:
    out = qrs_cli(data_dir, "keys", "create", "--user", user, *(["--admin"] if admin else []))
    return out.split()[-1]  # the key is the last word of the output, by contract


def token_for(server: ServerProcess, key: str) -> requests.Response:
    return requests.post(server.url + "/identity/token", timeout=10,
                         data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey",
                               "apikey": key})


class Caller:
    """Raw HTTP as one user (the stock client's headers, the token it would get)."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.base = server.url + "/api/v1"
        token = token_for(server, key).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=30,
                                **kwargs)


def error_message(response: requests.Response) -> str:
    body = response.json()
    assert set(body) >= {"errors", "trace"}, body
    return body["errors"][0]["message"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("auth") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(server):
    """Keys made with ``qrs keys create`` while the server runs (it starts in open mode)."""
    assert requests.get(server.url + "/api/v1/backends", timeout=10,
                        headers={"Authorization": "Bearer anything"}).status_code == 200
    made = {"alice": create_key(server.data_dir, "alice"),
            "bob": create_key(server.data_dir, "bob"),
            "root": create_key(server.data_dir, "root", admin=True)}
    return made


@pytest.fixture(scope="module")
def alice_work(server, keys):
    """A finished job of alice's inside one of her sessions, made with the stock client."""
    service = connect(server, token=keys["alice"])
    backend = service.backend("fake_manila")
    with Session(backend=backend) as session:
        job = SamplerV2(mode=session).run([isa(bell(), backend)], shots=50)
        job.result()
        return {"job": job.job_id(), "session": session.session_id, "service": service}


def test_keys_create_prints_key_last_and_list_hides_it(server, keys):
    listing = qrs_cli(server.data_dir, "keys", "list")
    rows = [line.split("\t") for line in listing.strip().splitlines()]
    assert {(r[1], r[2], r[3]) for r in rows} == {("alice", "user", "active"),
                                                 ("bob", "user", "active"),
                                                 ("root", "admin", "active")}
    for key in keys.values():
        assert key.startswith("qrs_") and len(key) > 30
        assert key not in listing
    db = b"".join(p.read_bytes() for p in server.data_dir.glob("qrs.sqlite3*"))
    assert (server.data_dir / "secret.key").stat().st_mode & 0o077 == 0  # owner-only
    assert not any(key.encode() in db for key in keys.values())  # stored hashed only


def test_new_key_works_at_once_and_unknown_key_is_refused(server, keys):
    answer = token_for(server, keys["alice"])
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["exp"] > time.time()
    refused = token_for(server, "qrs_not-a-real-key")
    assert refused.status_code == 401
    assert "Invalid API key" in error_message(refused)


def test_stock_client_shows_the_401_message(server, keys):
    """The client turns a refused token exchange into a warning carrying our message
    (then retries with the bare key, which is refused too, so it sees no backend)."""
    with pytest.warns(UserWarning, match="Invalid API key: it is unknown or was revoked"):
        connect(server, token="qrs_wrong")


@pytest.mark.parametrize("header, reason", [
    (None, "Missing Authorization header"),
    ("Basic YWxpY2U6cHc=", "Malformed Authorization header"),
    ("Bearer", "Malformed Authorization header"),
    ("Bearer not.a.jwt", "Invalid access token"),
    ("Bearer " + "x" * 5000, "Invalid access token"),
])
def test_bad_authorization_headers_answer_401(server, keys, header, reason):
    headers = {"Authorization": header} if header else {}
    response = requests.get(server.url + "/api/v1/jobs", headers=headers, timeout=10)
    assert response.status_code == 401
    assert reason in error_message(response)


def _key_id(server, user: str) -> str:
    rows = [line.split("\t") for line in qrs_cli(server.data_dir, "keys", "list").splitlines()]
    return next(r[0] for r in rows if r[1] == user and r[3] == "active")


def test_forged_expired_and_unsigned_tokens_answer_401(server, keys):
    secret = (server.data_dir / "secret.key").read_text().strip().encode()
    now = int(time.time())
    claims = {"sub": "alice", "admin": False, "kid": _key_id(server, "alice")}
    cases = {
        "expired": (jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, secret,
                               algorithm="HS256"), "expired"),
        "wrong secret": (jwt.encode({**claims, "iat": now, "exp": now + 600},
                                    b"a guessed secret, 32 bytes or more", algorithm="HS256"),
                         "Invalid access token"),
        "alg none": (jwt.encode({**claims, "admin": True, "iat": now, "exp": now + 600},
                                None, algorithm="none"), "Invalid access token"),
        "no expiry": (jwt.encode({**claims, "iat": now}, secret, algorithm="HS256"),
                      "Invalid access token"),
        "no key id": (jwt.encode({**claims, "kid": "", "iat": now, "exp": now + 600}, secret,
                                 algorithm="HS256"), "before the server had API keys"),
    }
    for name, (token, reason) in cases.items():
        response = requests.get(server.url + "/api/v1/jobs", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert reason in error_message(response), (name, error_message(response))


def test_revoked_key_tokens_are_refused_at_once(server, keys):
    key = create_key(server.data_dir, "carol")
    carol = Caller(server, key)
    service = connect(server, token=key)
    assert carol("GET", "/jobs").status_code == 200
    assert service.backend("fake_manila").num_qubits == 5
    qrs_cli(server.data_dir, "keys", "revoke", _key_id(server, "carol"))
    response = carol("GET", "/jobs")
    assert response.status_code == 401
    assert "revoked" in error_message(response)
    assert token_for(server, key).status_code == 401
    with pytest.raises(Exception) as caught:
        service.jobs()
    assert "revoked" in str(caught.value)


JOB_PROBES = [("GET", "/jobs/{job}"), ("GET", "/jobs/{job}/results"),
              ("GET", "/jobs/{job}/logs"), ("GET", "/jobs/{job}/metrics"),
              ("PUT", "/jobs/{job}/tags"), ("POST", "/jobs/{job}/cancel"),
              ("DELETE", "/jobs/{job}"), ("GET", "/sessions/{session}"),
              ("PATCH", "/sessions/{session}"), ("DELETE", "/sessions/{session}/close")]


@pytest.mark.parametrize("method, path", JOB_PROBES)
def test_other_users_work_answers_404(server, keys, alice_work, method, path):
    bob = Caller(server, keys["bob"])
    url = path.format(job=alice_work["job"], session=alice_work["session"])
    body = {"tags": ["mine"]} if method == "PUT" else (
        {"accepting_jobs": False} if method == "PATCH" else None)
    response = bob(method, url, json=body)
    assert response.status_code == 404, (url, response.text)
    assert "not found" in error_message(response)
    alice = Caller(server, keys["alice"])  # bob changed nothing: alice still has both
    assert alice("GET", f"/jobs/{alice_work['job']}").json()["tags"] == []
    assert alice("GET", f"/sessions/{alice_work['session']}").status_code == 200


def test_cannot_submit_into_another_users_session(server, keys, alice_work):
    bob = Caller(server, keys["bob"])
    response = bob("POST", "/jobs", json={
        "program_id": "sampler", "backend": "fake_manila", "session_id": alice_work["session"],
        "params": {"pubs": [], "version": 2}})
    assert response.status_code == 404
    assert alice_work["session"] in error_message(response)


def test_listing_shows_own_jobs_and_admin_sees_all(server, keys, alice_work):
    bob_service = connect(server, token=keys["bob"])
    assert alice_work["job"] not in {job.job_id() for job in bob_service.jobs(limit=100)}
    from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

    with pytest.raises(RuntimeJobNotFound):
        bob_service.job(alice_work["job"])
    alice_jobs = alice_work["service"].jobs(limit=100)
    assert alice_work["job"] in {job.job_id() for job in alice_jobs}
    assert all(Caller(server, keys["alice"])("GET", f"/jobs/{j.job_id()}").json()["user_id"]
               == "alice" for j in alice_jobs)
    root_service = connect(server, token=keys["root"])
    assert root_service.job(alice_work["job"]).status() == "DONE"
    assert alice_work["job"] in {job.job_id() for job in root_service.jobs(limit=100)}
    assert Caller(server, keys["root"])("GET", f"/sessions/{alice_work['session']}") \
        .status_code == 200


def test_keys_file_users_and_removal(tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# user:key[:admin]\ndave:dave-secret-key\nerin:erin-key:admin\n")
    app = create_app(Config(data_dir=str(tmp_path / "data"), api_keys_file=str(keys_file),
                            executor_threads=1))
    client = app.test_client()
    token = client.post("/identity/token", data={"apikey": "dave-secret-key"}).json
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["admin"]) == ("dave", False)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/jobs", headers=headers).status_code == 200
    keys_file.write_text("erin:erin-key:admin\n")  # dave removed: his token stops at once
    refused = client.get("/jobs", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json["errors"][0]["message"]


@pytest.fixture
def qrs_log(caplog):
    """The ``qrs`` logger does not propagate to the root, so attach caplog's handler."""
    logger = logging.getLogger("qrs")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("192.168.1.20", True),
                                          ("lab-box", True), ("127.0.0.1", False),
                                          ("localhost", False), ("::1", False)])
def test_open_mode_warns_when_exposed(tmp_path, qrs_log, host, warned):
    create_app(Config(data_dir=str(tmp_path / "data"), host=host, executor_threads=1))
    warnings = [r for r in qrs_log.records if r.levelno == logging.WARNING and
                "Open mode" in r.getMessage()]
    assert bool(warnings) == warned


def test_no_open_mode_warning_once_keys_exist(tmp_path, qrs_log):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("dave:k1\n")
    create_app(Config(data_dir=str(tmp_path / "data"), host="0.0.0.0",
                      api_keys_file=str(keys_file), executor_threads=1))
    assert not any("Open mode" in r.getMessage() for r in qrs_log.records)
