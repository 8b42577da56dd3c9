"""QRS as a test double: every scenario through the stock client against a real server.

Most tests use the pytest plugin's own fixtures (``qrs_server``, ``qrs_service``,
``qrs_control``; active here because QRS is installed). The control API's refusals, key
mode and gunicorn's several workers use ``ServerProcess`` servers of their own.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
import warnings

import pytest
import requests
from qiskit_ibm_runtime import SamplerV2
from qiskit_ibm_runtime.exceptions import (
    IBMRuntimeError,
    RuntimeInvalidStateError,
    RuntimeJobFailureError,
    RuntimeJobMaxTimeoutError,
)

from qrs.testkit.control_client import Control, ControlError
from qrs.testkit.server import LocalServer

from .support.payloads import bell, isa, sampler_params
from .support.server import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run_bell(service, backend_name: str = "fake_manila", shots: int = 100):
    backend = service.backend(backend_name)
    return SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots)


@functools.cache
def manila_bell_params() -> dict:
    """A Bell sampler job's params for fake_manila, as the client encodes them."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    return sampler_params(isa(bell(), FakeManilaV2()), shots=20)


def post_job(url: str, headers: dict | None = None):
    """``POST /jobs`` of a small fake_manila job, without the client (and its retries)."""
    return requests.post(f"{url}/api/v1/jobs", timeout=60, headers=headers or {}, json={
        "program_id": "sampler", "backend": "fake_manila", "params": manila_bell_params()})


def wait_final(control: Control, count: int, timeout: float = 120.0) -> list[dict]:
    """The control API's jobs once ``count`` of them are final (waits on states)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = control.jobs()
        if len([j for j in jobs if j["status"] in ("Completed", "Failed", "Cancelled")]) >= count:
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.1)


# ----------------------------------------------------------------- HTTP faults
def test_submission_retried_after_503s_is_seen_in_the_journal(qrs_service, qrs_control):
    qrs_control.set_scenario({"http_faults": [
        {"method": "POST", "path": "/api/v1/jobs", "status": 503, "times": 2}]})
    assert sum(run_bell(qrs_service).result()[0].data.meas.get_counts().values()) == 100
    assert qrs_control.statuses("POST", "/api/v1/jobs") == [503, 503, 200]
    assert [r["fault"] for r in qrs_control.requests() if r["path"] == "/api/v1/jobs"] == [
        "status 503 (before)", "status 503 (before)", None]
    assert len(qrs_control.jobs()) == 1


def test_lost_answer_makes_the_client_submit_twice(qrs_server, qrs_service, qrs_control):
    """``phase: after``: the job is stored, its answer lost; the stock client retries the
    POST and a second job exists. With an Idempotency-Key the retry returns the first."""
    after = {"http_faults": [{"method": "POST", "path": "/api/v1/jobs", "status": 503,
                              "phase": "after"}]}
    qrs_control.set_scenario(after)
    run_bell(qrs_service).result()
    assert qrs_control.statuses("POST", "/api/v1/jobs") == [503, 200]
    assert len(qrs_control.jobs()) == 2

    qrs_control.reset()
    qrs_control.set_scenario(after)
    key = {"Idempotency-Key": "submit-once"}
    lost, retried = post_job(qrs_server.url, key), post_job(qrs_server.url, key)
    assert (lost.status_code, retried.status_code) == (503, 200)
    assert lost.headers["X-QRS-Fault"] == "http_faults[0]"
    assert [j["id"] for j in qrs_control.jobs()] == [retried.json()["id"]]


def test_429_carries_retry_after_and_the_client_gives_up(qrs_server, qrs_service, qrs_control):
    qrs_control.set_scenario({"http_faults": [
        {"method": "GET", "path": "/api/v1/backends/*/status", "status": 429, "retry_after": 30},
        {"method": "POST", "path": "/api/v1/jobs", "status": 429}]})
    answer = requests.get(f"{qrs_server.url}/api/v1/backends/fake_manila/status", timeout=30)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "30"
    assert "http_faults[0]" in answer.json()["errors"][0]["message"]
    with pytest.raises(IBMRuntimeError, match="429"):
        run_bell(qrs_service)  # the stock client never retries a 429
    assert qrs_control.statuses("POST", "/api/v1/jobs") == [429]


def test_dropped_status_poll_is_retried(qrs_service, qrs_control):
    qrs_control.set_scenario({"http_faults": [
        {"method": "GET", "path": "/api/v1/jobs/*", "drop_connection": True}]})
    job = run_bell(qrs_service)
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    polls = [(r["status"], r["fault"]) for r in qrs_control.requests()
             if r["path"] == f"/api/v1/jobs/{job.job_id()}"]
    assert polls[0] == (None, "drop_connection") and polls[1][0] == 200


def test_delay_slows_the_answer(qrs_server, qrs_control):
    qrs_control.set_scenario({"http_faults": [
        {"path": "/api/v1/backends/fake_manila/status", "delay_seconds": 0.5, "times": 2}]})
    for _ in range(3):
        assert requests.get(f"{qrs_server.url}/api/v1/backends/fake_manila/status",
                            timeout=30).status_code == 200
    entries = qrs_control.requests()
    assert [e["fault"] for e in entries] == ["delay 0.5s", "delay 0.5s", None]
    assert all(e["duration_ms"] >= 500 for e in entries[:2])


# ------------------------------------------------------------------ job fates
def test_next_jobs_fail_and_cancel_in_submission_order(qrs_service, qrs_control):
    qrs_control.set_scenario({"next_jobs": [
        {"outcome": "failed", "reason": "QPU calibration in progress", "reason_code": 1517},
        {"outcome": "cancelled", "reason": "Maintenance window"}]})
    first, second, third = (run_bell(qrs_service) for _ in range(3))
    with pytest.raises(RuntimeJobFailureError, match="QPU calibration in progress"):
        first.result()
    with pytest.raises(RuntimeInvalidStateError, match="cancelled"):
        second.result()
    assert sum(third.result()[0].data.meas.get_counts().values()) == 100
    jobs = {j["id"]: j for j in qrs_control.jobs()}
    assert (jobs[first.job_id()]["reason_code"], jobs[first.job_id()]["scenario"]) == (
        1517, "next_jobs[0]")
    assert jobs[second.job_id()]["status"] == "Cancelled"
    assert jobs[third.job_id()]["scenario"] is None
    assert "QRS test scenario (next_jobs[0])" in first.logs()
    assert qrs_control.scenario()["next_jobs"] == []


@pytest.mark.parametrize("outcome", ["cancelled", "failed"])
def test_reason_code_1305_is_a_max_time_error(qrs_service, qrs_control, outcome):
    qrs_control.set_scenario({"next_jobs": [{"outcome": outcome, "reason_code": 1305}]})
    with pytest.raises(RuntimeJobMaxTimeoutError):
        run_bell(qrs_service).result()


def test_failure_rate_follows_its_seed(qrs_server, qrs_control):
    import random

    scenario = {"seed": 11, "failures": {"rate": 0.5, "reason": "flaky QPU"}}
    expected = [random.Random(f"11:{n}").random() < 0.5 for n in range(8)]
    for _ in range(2):  # the same seed, the same failures
        qrs_control.reset()
        qrs_control.set_scenario(scenario)
        for _ in range(8):
            assert post_job(qrs_server.url).status_code == 200
        jobs = wait_final(qrs_control, 8)
        assert [j["status"] == "Failed" for j in jobs] == expected
        assert {j["reason"] for j in jobs if j["status"] == "Failed"} == {"flaky QPU"}


# ---------------------------------------------------------------- queue holds
def test_job_stays_queued_for_its_polls(qrs_service, qrs_control):
    qrs_control.set_scenario({"queue": {"polls_before_running": 3}})
    job = run_bell(qrs_service)
    assert [job.status() for _ in range(3)] == ["QUEUED"] * 3
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    assert qrs_control.jobs()[0]["polls"] >= 4


def test_job_stays_queued_for_its_delay(qrs_service, qrs_control):
    qrs_control.set_scenario({"queue": {"delay_seconds": 1.5}})
    job = run_bell(qrs_service)
    job.result()
    timestamps = job.metrics()["timestamps"]
    created, running = (time.mktime(time.strptime(timestamps[k][:19], "%Y-%m-%dT%H:%M:%S"))
                        + float("0." + timestamps[k][20:26]) for k in ("created", "running"))
    assert running - created >= 1.5 - 0.01  # never before its delay (a lower bound only)


def test_offline_backend_holds_its_jobs_not_the_others(qrs_service, qrs_control):
    qrs_control.set_scenario({"backends": {"fake_manila": {"status": "offline"}}})
    held = run_bell(qrs_service, "fake_manila")
    other = run_bell(qrs_service, "fake_lima")
    assert sum(other.result()[0].data.meas.get_counts().values()) == 100
    assert [held.status() for _ in range(3)] == ["QUEUED"] * 3
    qrs_control.set_scenario({})  # back online
    assert sum(held.result()[0].data.meas.get_counts().values()) == 100


def test_offline_job_can_be_cancelled(qrs_service, qrs_control):
    qrs_control.set_scenario({"backends": {"fake_manila": {"status": "offline"}}})
    job = run_bell(qrs_service)
    job.cancel()
    assert job.status() == "CANCELLED"


@pytest.mark.qrs_scenario({"backends": {"*": {"queue_length": 10},
                                        "fake_manila": {"status": "offline", "queue_length": 0},
                                        "fake_lima": {"queue_length": 1}}})
def test_least_busy_skips_an_offline_backend(qrs_service):
    assert qrs_service.least_busy().name == "fake_lima"


def test_paused_backend_warns_then_runs(qrs_service, qrs_control):
    qrs_control.set_scenario({"backends": {"fake_manila": {"status": "paused",
                                                           "reason": "calibrating"}}})
    status = qrs_service.backend("fake_manila").status()
    assert (status.operational, status.status_msg) == (True, "paused")
    with pytest.warns(UserWarning, match="currently has a status of paused"):
        job = run_bell(qrs_service)
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100


# ------------------------------------------------------------- usage and auth
def test_usage_limit_refuses_submission_with_403(qrs_service, qrs_control):
    qrs_control.set_scenario({"usage": {"limit_seconds": 600, "consumed_seconds": 600}})
    usage = qrs_service.usage()
    assert usage["usage_limit_reached"] and usage["usage_remaining_seconds"] == 0
    with pytest.warns(UserWarning, match="usage limit"), \
            pytest.raises(IBMRuntimeError, match="403"):
        run_bell(qrs_service)
    assert qrs_control.jobs() == []


def test_usage_limit_counts_real_usage(qrs_service, qrs_control):
    """Without ``consumed_seconds`` the jobs' real usage counts: the first job runs, and
    once it has used more than the (tiny) limit the next submission is refused."""
    qrs_control.set_scenario({"usage": {"limit_seconds": 0.000001}})
    run_bell(qrs_service).result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(IBMRuntimeError, match="usage limit"):
            run_bell(qrs_service)


def test_refused_tokens_leave_the_client_without_backends(qrs_server, qrs_control):
    qrs_control.set_scenario({"auth": {"reject_tokens": True}})
    with pytest.warns(UserWarning, match="reject_tokens"):
        service = qrs_server.connect()
    assert service.backends() == []
    assert [r["status"] for r in qrs_control.requests()][:2] == [400, 401]


# --------------------------------------------------------------- control API
def test_bad_scenario_answers_400_and_keeps_the_old_one(qrs_control):
    qrs_control.set_scenario({"next_jobs": [{"outcome": "failed"}]})
    for bad, named in [({"next_jobs": [{"outcome": "boom"}]}, "next_jobs.0.outcome"),
                       ({"backends": {"fake_nowhere": {"status": "offline"}}}, "fake_nowhere"),
                       ({"noise": False}, "noise"),
                       ({"typo": 1}, "typo")]:
        with pytest.raises(ControlError, match=f"400.*{named}"):
            qrs_control.set_scenario(bad)
    assert qrs_control.scenario()["next_jobs"] == [
        {"outcome": "failed", "reason": None, "reason_code": None}]


def test_reset_forgets_jobs_journal_and_scenario(qrs_service, qrs_control):
    qrs_control.set_scenario({"queue": {"polls_before_running": 100}})
    run_bell(qrs_service)
    assert qrs_control.jobs() and qrs_control.requests()
    qrs_control.reset()
    assert qrs_control.jobs() == [] and qrs_control.requests() == []
    assert qrs_control.scenario()["queue"]["polls_before_running"] == 0


def test_control_api_is_absent_unless_enabled(live_server):
    for method in ("GET", "PUT", "POST"):
        answer = requests.request(method, f"{live_server.url}/_qrs/scenario", json={},
                                  timeout=30)
        assert answer.status_code == 404, (method, answer.text)
    assert requests.get(f"{live_server.url}/_qrs/requests", timeout=30).status_code == 404


@pytest.fixture(scope="module")
def key_mode_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("control-keys")
    keys = folder / "keys.txt"
    keys.write_text("alice:alice-key\nroot:root-key:admin\n")
    server = ServerProcess(folder / "data", env={"QRS_CONTROL_API": "1",
                                                 "QRS_API_KEYS_FILE": str(keys)}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("authorization", [None, "Bearer forged.token.here", "apikey alice-key",
                                           "apikey wrong-key"])
def test_control_api_needs_an_admin_in_key_mode(key_mode_server, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [("GET", "/_qrs/scenario"), ("PUT", "/_qrs/scenario"),
                         ("POST", "/_qrs/reset"), ("GET", "/_qrs/jobs"),
                         ("GET", "/_qrs/requests")]:
        answer = requests.request(method, key_mode_server.url + path, headers=headers,
                                  json={"next_jobs": []}, timeout=30)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "admin" in answer.json()["errors"][0]["message"]
    alice_token = requests.post(f"{key_mode_server.url}/identity/token",
                                data={"apikey": "alice-key"}, timeout=30).json()["access_token"]
    assert requests.get(f"{key_mode_server.url}/_qrs/scenario", timeout=30, headers={
        "Authorization": f"Bearer {alice_token}"}).status_code == 403


def test_control_api_admin_key_works(key_mode_server):
    control = Control(key_mode_server.url, "root-key")
    control.set_scenario({"next_jobs": [{"outcome": "cancelled"}]})
    assert control.scenario()["next_jobs"][0]["outcome"] == "cancelled"
    control.reset()


# ------------------------------------------------------------- many workers
@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("control-gunicorn") / "data",
                           env={"QRS_CONTROL_API": "1", "QRS_NOISE": "0"},
                           gunicorn=True, workers=3).start()
    yield server
    server.stop()


def test_scenario_is_shared_by_gunicorn_workers(gunicorn_server):
    """Three workers, one scenario: three scripted failures fail the three oldest jobs of
    six, whichever workers claim them; four faults fault four of twelve requests."""
    control = Control(gunicorn_server.url)
    control.set_scenario({
        "next_jobs": [{"outcome": "failed", "reason": f"scripted {n}"} for n in range(3)],
        "http_faults": [{"path": "/backends/fake_manila/status", "status": 503, "times": 4}]})
    ids = [post_job(gunicorn_server.url).json()["id"] for _ in range(6)]
    jobs = {j["id"]: j for j in wait_final(control, 6)}
    assert [jobs[i]["status"] for i in ids] == ["Failed"] * 3 + ["Completed"] * 3
    assert [jobs[i]["reason"] for i in ids[:3]] == [f"scripted {n}" for n in range(3)]
    statuses, workers = [], set()
    for _ in range(12):
        answer = requests.get(f"{gunicorn_server.url}/backends/fake_manila/status", timeout=30)
        statuses.append(answer.status_code)
        workers.add(answer.headers.get("X-QRS-Worker"))
    assert statuses.count(503) == 4 and statuses[4:] == [200] * 8, statuses
    journal = [r for r in control.requests() if r["path"] == "/backends/fake_manila/status"]
    assert [r["status"] for r in journal] == statuses  # every worker writes one journal


# ---------------------------------------------------------------- the CLI
def test_serve_refuses_a_bad_scenario_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"next_jobs": [{"outcome": "exploded"}]}))
    done = subprocess.run([sys.executable, "-m", "qrs.cli", "serve", "--dev", "--scenario",
                           str(bad)], capture_output=True, text=True, timeout=120, check=False,
                          env={"QRS_DATA_DIR": str(tmp_path / "data"), "PATH": ""})
    assert done.returncode == 2 and "next_jobs.0.outcome" in done.stderr


def test_serve_starts_with_the_scenario_file(tmp_path):
    good = tmp_path / "scenario.json"
    good.write_text(json.dumps({"next_jobs": [{"outcome": "cancelled", "reason": "at start"}]}))
    server = LocalServer(tmp_path / "data", {"QRS_NOISE": "0"}, scenario=str(good)).start()
    try:
        control = server.control()
        assert control.scenario()["next_jobs"][0]["reason"] == "at start"
        control.set_scenario({})
        control.reset()  # back to the file's scenario
        assert control.scenario()["next_jobs"][0]["reason"] == "at start"
    finally:
        server.stop()
