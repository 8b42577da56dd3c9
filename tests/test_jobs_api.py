"""Every job call of the stock client against a real server process (issue 4, "Jobs").

The module's server has one executor thread and no noise, so a busy job holds the only
thread and later jobs stay Queued for as long as a test needs them to.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import qiskit
import requests
from qiskit_ibm_runtime import RuntimeEncoder, SamplerV2
from qiskit_ibm_runtime.exceptions import (
    RuntimeInvalidStateError,
    RuntimeJobFailureError,
    RuntimeJobMaxTimeoutError,
    RuntimeJobNotFound,
)

from .conftest import connect
from .support.payloads import assert_binomial, bell, entangled, isa, sampler_params
from .support.jobs import (
    busy_job, cancel_quietly, post_job, raw_job, times,
)
from .support.polling import wait_status
from .support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Ideal, one executor thread, 4 MiB state limit (so a 20-qubit circuit fails)."""
    proc = ServerProcess(tmp_path_factory.mktemp("jobs") / "data",
                         env={"QRS_NOISE": "0", "QRS_EXECUTOR_THREADS": "1",
                              "QRS_MAX_MEMORY_MB": "4"}).start()
    yield proc
    proc.stop()


def test_completed_job_answers_every_call(server, svc, backend):
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    sampler = SamplerV2(mode=backend)
    sampler.options.environment.job_tags = ["first", "bell"]
    shots = 2000
    job = sampler.run([isa(bell(), backend)], shots=shots)
    counts = job.result()[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == shots
    assert_binomial(counts["00"], shots, 0.5)

    assert job.status() == "DONE" and job.done() and job.in_final_state()
    assert job.error_message() is None
    assert job.primitive_id == "sampler"
    assert job.session_id is None
    assert sorted(job.tags) == ["bell", "first"]
    assert before <= job.creation_date <= datetime.now(timezone.utc)
    assert job.backend().name == "fake_manila"
    assert job.properties().t1(0) > 0
    inputs = job.inputs
    assert len(inputs["pubs"]) == 1 and inputs["version"] == 2

    logs = job.logs()
    for line in ("Job received and queued.", "Job started", "Executing 1 pub(s) on fake_manila",
                 "Pub 1/1 done", "Job completed."):
        assert line in logs, logs
    assert logs.index("Job received") < logs.index("Job started") < logs.index("Job completed")

    metrics = job.metrics()
    running, finished = times(job)
    created = datetime.fromisoformat(metrics["timestamps"]["created"].replace("Z", "+00:00"))
    assert created <= running <= finished
    assert metrics["usage"]["seconds"] > 0 and metrics["usage"]["quantum_seconds"] > 0
    assert metrics["qiskit_version"] == qiskit.__version__
    assert metrics["num_circuits"] == 1
    assert job.usage() == pytest.approx(metrics["usage"]["seconds"]) and job.usage() > 0

    assert sorted(job.update_tags(["renamed", "x"])) == ["renamed", "x"]
    again = svc.job(job.job_id())
    assert sorted(again.tags) == ["renamed", "x"]
    assert again.status() == "DONE" and again.result()[0].data.meas.get_counts() == counts
    assert again.creation_date == job.creation_date

    with pytest.raises(RuntimeInvalidStateError, match="cannot be cancelled"):
        job.cancel()  # 409: already final

    usage = svc.usage()
    assert usage["usage_consumed_seconds"] >= metrics["usage"]["seconds"] - 1e-6  # rounding
    assert usage["usage_limit_reached"] is False


def test_cancel_running_and_queued_jobs(server, svc, backend):
    running = busy_job(backend, pubs=300)
    try:
        queued = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=100)
        wait_status(running, {"RUNNING"})
        assert queued.status() == "QUEUED" and not queued.in_final_state()

        queued.cancel()
        assert queued.status() == "CANCELLED" and queued.cancelled()
        assert raw_job(server, queued.job_id())["state"]["status"] == "Cancelled"
        with pytest.raises(RuntimeInvalidStateError, match="cancelled"):
            queued.result()
        running.cancel()  # a Running job: Cancelled now, its executor stops after a pub
    finally:
        cancel_quietly([running])  # leaves no busy job behind if an assertion failed
    assert svc.job(running.job_id()).status() == "CANCELLED"
    with pytest.raises(RuntimeInvalidStateError):
        running.result()
    with pytest.raises(RuntimeInvalidStateError):
        running.cancel()  # already final
    # the runner moved on: a new job completes although the busy job had pubs left
    follow_up = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=10)
    assert follow_up.result()[0].data.meas.num_shots == 10
    logs = running.logs()
    assert "Job cancelled: Cancelled by the user." in logs and "Job completed." not in logs
    assert "Pub 300/300" not in logs
    # the late result of the stopped executor was discarded, not published
    text = requests.get(f"{server.url}/api/v1/jobs/{running.job_id()}/results", timeout=10).text
    assert not text.startswith("{") and "Cancelled" in text
    _, finished = times(running)
    assert finished is not None


def test_failed_job_reason_and_log(server, svc):
    wide_backend = svc.backend("fake_kolkata")
    wide = entangled(20)  # no plan fits 4 MiB: not Clifford, too entangled for an MPS
    job = SamplerV2(mode=wide_backend).run([isa(wide, wide_backend)], shots=10)
    with pytest.raises(RuntimeJobFailureError, match="QRS_MAX_MEMORY_MB"):
        job.result()
    assert job.status() == "ERROR" and job.errored()
    assert "QRS_MAX_MEMORY_MB" in job.error_message()
    assert "Job failed:" in job.logs()
    assert raw_job(server, job.job_id())["state"]["reason_code"] == 1500


def test_max_execution_time_option_times_out(server, svc, backend):
    job = busy_job(backend, pubs=300, max_execution_time=1)
    with pytest.raises(RuntimeJobMaxTimeoutError, match="maximum execution time of 1 s"):
        job.result()
    assert job.status() == "ERROR"  # the client maps Cancelled + 1305 to a time-out error
    assert "ran longer than maximum execution time" in job.error_message()
    state = raw_job(server, job.job_id())["state"]
    assert state["status"] == "Cancelled" and state["reason_code"] == 1305
    assert "Job cancelled:" in job.logs()


@pytest.mark.system
def test_server_wide_execution_cap(tmp_path):
    capped = ServerProcess(tmp_path / "data", env={"QRS_NOISE": "0",
                                                   "QRS_MAX_EXECUTION_TIME": "1"}).start()
    try:
        backend = connect(capped).backend("fake_manila")
        job = busy_job(backend, pubs=300, max_execution_time=600)  # the server's cap wins
        with pytest.raises(RuntimeJobMaxTimeoutError, match="QRS_MAX_EXECUTION_TIME"):
            job.result()
        assert raw_job(capped, job.job_id())["state"]["reason_code"] == 1305
    finally:
        capped.stop()


@pytest.fixture(scope="module")
def api_only(tmp_path_factory):
    """A server with no executor threads (an API-only node): its jobs stay Queued."""
    proc = ServerProcess(tmp_path_factory.mktemp("api-only") / "data",
                         env={"QRS_START_RUNNER": "0", "QRS_STATUS_WAIT_MS": "0"}).start()
    yield proc
    proc.stop()


def test_listing_filters_and_paging_through_250_jobs(api_only, backend):
    svc = connect(api_only)
    params = json.dumps(sampler_params(isa(bell(), backend), shots=1))
    ids: list[str] = []
    for index in range(250):
        answer = post_job(api_only, "fake_lima" if index % 5 == 0 else "fake_manila", params,
                          tags=["paging", f"parity-{index % 2}"])
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    estimator = post_job(api_only, "fake_manila", json.dumps(
        {"pubs": [[isa(bell(), backend).remove_final_measurements(inplace=False), "IIIZZ"]],
         "version": 2, "options": {}}, cls=RuntimeEncoder), program_id="estimator")
    assert estimator.status_code == 200, estimator.text
    middle = svc.job(ids[124]).creation_date

    everything = svc.jobs(limit=None, job_tags=["paging"])
    assert [j.job_id() for j in everything] == ids[::-1]  # newest first, all 13 pages
    assert all(j.status() == "QUEUED" for j in everything[:3])
    oldest = svc.jobs(limit=None, job_tags=["paging"], descending=False)
    assert [j.job_id() for j in oldest] == ids
    page = svc.jobs(limit=30, skip=230, job_tags=["paging"])
    assert [j.job_id() for j in page] == ids[19::-1]
    assert svc.jobs(limit=10, skip=260, job_tags=["paging"]) == []  # past the end: ends
    assert [j.job_id() for j in svc.jobs(limit=7)] == [estimator.json()["id"], *ids[:-7:-1]]
    assert len(svc.jobs(limit=None, job_tags=["paging", "parity-1"])) == 125
    lima = svc.jobs(limit=None, backend_name="fake_lima")
    assert {j.job_id() for j in lima} == set(ids[::5])
    assert all(j.backend().name == "fake_lima" for j in lima[:3])
    assert len(svc.jobs(limit=None, program_id="sampler")) == 250
    assert [j.job_id() for j in svc.jobs(program_id="estimator")] == [estimator.json()["id"]]
    after = svc.jobs(limit=None, created_after=middle, job_tags=["paging"])
    before = svc.jobs(limit=None, created_before=middle, job_tags=["paging"])
    assert {j.job_id() for j in after} == set(ids[124:])
    assert {j.job_id() for j in before} == set(ids[:125])

    for job_id in ids[:50]:
        assert requests.post(f"{api_only.url}/api/v1/jobs/{job_id}/cancel",
                             timeout=10).status_code == 204
    final = svc.jobs(limit=None, pending=False, job_tags=["paging"])
    assert {j.job_id() for j in final} == set(ids[:50])
    assert all(j.status() == "CANCELLED" for j in final[:3])
    assert len(svc.jobs(limit=None, pending=True, job_tags=["paging"])) == 200


def test_paging_loop_ends_when_jobs_vanish_meanwhile(api_only, backend):
    """``count`` must never fall below ``offset``, or the client's loop never ends."""
    svc = connect(api_only)
    params = json.dumps(sampler_params(isa(bell(), backend), shots=1))
    ids = [post_job(api_only, "fake_manila", params, tags=["vanish"]).json()["id"]
           for _ in range(30)]
    pages: list[int] = []
    original = svc._active_api_client.jobs_get

    def jobs_get_deleting(**kwargs):
        """The client's own call; after its first page (20 jobs) someone deletes 15."""
        answer = original(**kwargs)
        pages.append(len(answer["jobs"]))
        if len(pages) == 1:
            for job_id in ids[:15]:
                svc.delete_job(job_id)
        return answer

    svc._active_api_client.jobs_get = jobs_get_deleting
    try:
        outcome: list = []
        worker = threading.Thread(target=lambda: outcome.append(
            svc.jobs(limit=None, job_tags=["vanish"])), daemon=True)
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), f"service.jobs() kept paging: {pages[:20]}"
        assert len(outcome[0]) == 20  # the first page's jobs: nothing more is left
        worker = threading.Thread(target=lambda: outcome.append(
            svc.jobs(limit=5, skip=40, job_tags=["vanish"])), daemon=True)
        worker.start()
        worker.join(20)
        assert not worker.is_alive() and outcome[1] == []
    finally:
        svc._active_api_client.jobs_get = original


def test_delete_job_removes_row_and_files(server, svc, backend):
    job = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=10)
    job.result()
    data = server.data_dir
    assert (data / "params" / f"{job.job_id()}.json").exists()
    assert (data / "results" / f"{job.job_id()}.json").exists()
    svc.delete_job(job.job_id())
    assert not (data / "params" / f"{job.job_id()}.json").exists()
    assert not (data / "results" / f"{job.job_id()}.json").exists()
    with pytest.raises(RuntimeJobNotFound):
        svc.job(job.job_id())
    with pytest.raises(RuntimeJobNotFound):
        svc.delete_job(job.job_id())
    assert job.job_id() not in {j.job_id() for j in svc.jobs(limit=None)}


def test_unknown_job_and_bad_filters_are_clear_4xx(server, svc):
    with pytest.raises(RuntimeJobNotFound):
        svc.job("dnosuchjob0000000000")
    answer = requests.get(f"{server.url}/api/v1/jobs?limit=5&colour=red", timeout=10)
    assert answer.status_code == 400 and "colour" in answer.json()["errors"][0]["message"]
    answer = requests.put(f"{server.url}/api/v1/jobs/dnosuchjob0000000000/tags",
                          json={"tags": ["a"]}, timeout=10)
    assert answer.status_code == 404 and "not found" in answer.json()["errors"][0]["message"]
    answer = requests.get(f"{server.url}/api/v1/instances/configuration", timeout=10)
    assert answer.status_code == 200 and answer.json()["qctrl_enabled"] is False
