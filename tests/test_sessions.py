"""Sessions and batches through the stock client against a real server (issue 4).

State machine as the client reads it (``Session.status()``): ``open`` and ``inactive``
→ "Pending", ``active`` → "In progress, accepting new jobs" (or "not accepting" once
closing), ``closed`` → "Closed". A dedicated session's jobs run one at a time in order
(proven with the jobs' running/finished timestamps); a batch's jobs overlap.
"""

from __future__ import annotations

import json

import requests
import pytest
from qiskit_ibm_runtime import Batch, SamplerV2, Session
from qiskit_ibm_runtime.exceptions import (
    IBMInputValueError,
    IBMRuntimeError,
    RuntimeInvalidStateError,
)

from .conftest import connect
from .support.payloads import bell, isa, sampler_params
from .support.jobs import (
    BUSY_SHOTS, busy_circuit, busy_job, cancel_quietly, post_job, raw_job,
    times,
)
from .support.polling import wait_status, wait_until
from .support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Ideal, two executor threads, maintenance every 0.2 s, 30-second interactive TTL."""
    proc = ServerProcess(tmp_path_factory.mktemp("sessions") / "data",
                         env={"QRS_NOISE": "0", "QRS_EXECUTOR_THREADS": "2",
                              "QRS_HEARTBEAT_SECONDS": "0.2",
                              "QRS_SESSION_INTERACTIVE_TTL": "30"}).start()
    yield proc
    proc.stop()


def small_job(mode, backend, shots: int = 50):
    return SamplerV2(mode=mode).run([isa(bell(), backend)], shots=shots)


def test_session_as_context_manager(server, svc, backend):
    with Session(backend=backend, max_time=600) as session:
        details = session.details()
        assert details["state"] == "open" and session.status() == "Pending"
        assert details["mode"] == "dedicated" and details["backend_name"] == "fake_manila"
        assert details["max_time"] == 600 and details["interactive_timeout"] == 30
        assert details["accepting_jobs"] is True and details["activated_at"] is None

        busy = busy_job(session, pubs=15)
        wait_status(busy, {"RUNNING"})
        assert session.status() == "In progress, accepting new jobs"
        assert busy.session_id == session.session_id
        quick = small_job(session, backend)
        assert quick.result()[0].data.meas.num_shots == 50
        assert busy.status() == "DONE"
        details = session.details()
        assert details["activated_at"] and details["last_job_started"]
        assert details["last_job_completed"] and details["closed_at"] is None
        assert details["usage_time"] > 0 and session.usage() == details["usage_time"]
        listed = svc.jobs(session_id=session.session_id)
        assert {j.job_id() for j in listed} == {busy.job_id(), quick.job_id()}
    assert session.status() == "Closed"  # nothing was pending: closes at once
    details = session.details()
    assert details["closed_at"] and details["accepting_jobs"] is False
    with pytest.raises(IBMRuntimeError, match="The session is closed"):
        small_job(session, backend)


def test_dedicated_session_runs_jobs_in_submission_order(svc, backend):
    session = Session(backend=backend)
    jobs = [busy_job(session, pubs=4) for _ in range(3)]
    for job in jobs:
        assert job.result()[0].data.c.num_shots > 0
    spans = [times(job) for job in jobs]
    for (_, finished), (started_next, _) in zip(spans, spans[1:]):
        assert started_next >= finished, spans  # one at a time, in submission order
    session.close()
    assert session.status() == "Closed"


def test_batch_jobs_run_side_by_side(svc, backend):
    with Batch(backend=backend) as batch:
        assert batch.details()["mode"] == "batch"
        first, second = busy_job(batch, pubs=25), busy_job(batch, pubs=25)
        first.result(), second.result()
    (start1, end1), (start2, end2) = times(first), times(second)
    assert start2 < end1 and start1 < end2, (start1, end1, start2, end2)  # they overlapped
    assert batch.status() == "Closed"


def test_active_session_job_goes_ahead_of_unrelated_queued_jobs(svc, backend):
    session = Session(backend=backend)
    session_busy = busy_job(session, pubs=300)
    other_busy = busy_job(backend, pubs=300)  # both executor threads are now taken
    try:
        wait_status(session_busy, {"RUNNING"})
        wait_status(other_busy, {"RUNNING"})
        waiting = [small_job(backend, backend) for _ in range(2)]  # queued before ...
        session_next = small_job(session, backend)  # ... the session's next job
        assert session_next.status() == "QUEUED"
        session_busy.cancel()  # frees a thread: the active session's job is taken first
        session_next.result()
    finally:
        cancel_quietly([session_busy, other_busy])
    waiting[0].result()
    assert times(session_next)[0] < times(waiting[0])[0]
    assert waiting[0].creation_date < session_next.creation_date
    waiting[1].result()
    session.close()


def test_session_keeps_its_priority_between_jobs(svc, backend):
    """An iterative session: its next job, sent after the last one finished but within
    the interactive TTL, still goes ahead of jobs queued outside the session."""
    circuit, bell_circuit = busy_circuit(backend), isa(bell(), backend)
    session = Session(backend=backend)
    SamplerV2(mode=session).run([bell_circuit], shots=10).result()
    assert session.details()["state"] == "active"
    blockers = [SamplerV2(mode=backend).run([(circuit, None, BUSY_SHOTS)] * 300)
                for _ in range(2)]
    try:
        for blocker in blockers:
            wait_status(blocker, {"RUNNING"})
        waiting = SamplerV2(mode=backend).run([bell_circuit], shots=10)
        session_next = SamplerV2(mode=session).run([bell_circuit], shots=10)
        assert session.details()["state"] == "active"
        blockers[0].cancel()
        session_next.result()
    finally:
        cancel_quietly(blockers)
    waiting.result()
    assert times(session_next)[0] < times(waiting)[0]
    session.close()


def test_close_finishes_queued_jobs_and_refuses_new_ones(server, svc, backend):
    session = Session(backend=backend)
    second_handle = Session.from_id(session.session_id, svc)
    running = busy_job(session, pubs=20)
    queued = small_job(session, backend)
    wait_status(running, {"RUNNING"})
    session.close()
    assert second_handle.status() == "In progress, not accepting new jobs"
    with pytest.raises(IBMRuntimeError, match="closed and accepts no new jobs"):
        small_job(second_handle, backend)  # refused by the server (409), shown by the client
    assert running.result() and queued.result()
    wait_until(lambda: second_handle.status() == "Closed", what="session to close")
    assert session.details()["closed_at"]


def test_cancel_cancels_pending_jobs_and_closes(server, svc, backend):
    session = Session(backend=backend)
    running = busy_job(session, pubs=300)
    try:
        queued = small_job(session, backend)
        wait_status(running, {"RUNNING"})
    finally:
        session.cancel()
    assert queued.status() == "CANCELLED" and running.status() == "CANCELLED"
    assert session.status() == "Closed"
    state = raw_job(server, queued.job_id())["state"]
    assert state["reason"] == f"Session {session.session_id} was cancelled."
    with pytest.raises(RuntimeInvalidStateError):
        queued.result()
    assert f"Session {session.session_id} was cancelled." in queued.logs()


def test_reopen_by_id(svc, backend):
    session = Session(backend=backend)
    first = small_job(session, backend)
    again = Session.from_id(session.session_id, svc)
    assert again.session_id == session.session_id and again.backend() == "fake_manila"
    second = small_job(again, backend)
    assert second.session_id == session.session_id
    first.result(), second.result()
    with pytest.raises(IBMInputValueError, match="execution mode dedicated instead of batch"):
        Batch.from_id(session.session_id, svc)
    batch = Batch(backend=backend)
    assert Batch.from_id(batch.session_id, svc).details()["mode"] == "batch"
    with pytest.raises(IBMInputValueError, match="Session not found"):
        Session.from_id("dnosuchsession000000", svc)
    session.close()
    batch.close()
    closed = Session.from_id(session.session_id, svc)
    with pytest.raises(IBMRuntimeError, match="The session is closed"):
        small_job(closed, backend)


def test_jobs_to_closed_unknown_or_foreign_sessions_are_refused(server, svc, backend):
    params = json.dumps(sampler_params(isa(bell(), backend), shots=1))
    answer = post_job(server, "fake_manila", params, session_id="dnosuchsession000000")
    assert answer.status_code == 404
    assert "Session dnosuchsession000000 was not found" in answer.json()["errors"][0]["message"]
    session = Session(backend=backend)
    answer = post_job(server, "fake_lima", params, session_id=session.session_id)
    assert answer.status_code == 400 and "runs on fake_manila, not fake_lima" in answer.text
    session.cancel()
    answer = post_job(server, "fake_manila", params, session_id=session.session_id)
    assert answer.status_code == 409
    assert "closed and accepts no new jobs" in answer.json()["errors"][0]["message"]
    answer = requests.patch(f"{server.url}/api/v1/sessions/{session.session_id}",
                            json={"accepting_jobs": True}, timeout=10)
    assert answer.status_code == 400 and "cannot be reopened" in answer.text


@pytest.mark.system
def test_interactive_ttl_deactivates_and_a_new_job_reactivates(tmp_path):
    short = ServerProcess(tmp_path / "data", env={
        "QRS_NOISE": "0", "QRS_HEARTBEAT_SECONDS": "0.2",
        "QRS_SESSION_INTERACTIVE_TTL": "1"}).start()
    try:
        backend = connect(short).backend("fake_manila")
        session = Session(backend=backend)
        small_job(session, backend).result()
        wait_until(lambda: session.details()["state"] == "inactive", timeout=15,
                   what="the idle session to go inactive")
        assert session.status() == "Pending" and session.details()["accepting_jobs"] is True
        next_job = small_job(session, backend)  # an inactive session still takes jobs
        next_job.result()
        details = session.details()
        assert details["last_job_started"] >= next_job.metrics()["timestamps"]["running"]
        assert details["state"] in {"active", "inactive"}  # reactivated (maybe idle again)
        session.close()
        assert session.status() == "Closed"
    finally:
        short.stop()


def test_max_ttl_closes_session_and_cancels_queued_jobs(server, svc, backend):
    """As on IBM's service: queued jobs are cancelled, the running one completes."""
    session = Session(backend=backend, max_time=2)  # time enough to queue the second job
    running = busy_job(session, pubs=60)  # 3 s or more: still running at the max TTL
    queued = small_job(session, backend)
    wait_status(running, {"RUNNING"})
    wait_until(lambda: session.status() == "Closed", timeout=20,
               what="the session to reach its max TTL")
    assert queued.status() == "CANCELLED"
    assert running.result()[0].data.c.num_shots > 0 and running.status() == "DONE"
    reason = raw_job(server, queued.job_id())["state"]["reason"]
    assert reason == f"Session {session.session_id} reached its maximum time to live (2 s)."
    with pytest.raises(IBMRuntimeError, match=r"maximum time to live \(2 s\)\. Open a new"):
        small_job(session, backend)  # the client still thinks it open; the server says why
