"""The store without HTTP: exclusive claims, leases, cancels, sessions, listing."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time

import pytest

from qrs.states import JobStatus, ReasonCode, SessionMode, SessionState
from qrs.store import JobQuery, Store

from .support.store import new_job


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "data")


def test_add_get_and_params_round_trip(store):
    job_id = new_job(store, tags=["a", "b"], max_execution_time=7)
    job = store.get_job(job_id)
    assert job.status == JobStatus.QUEUED and job.tags == ["a", "b"]
    assert job.max_execution_time == 7
    assert json.loads(store.job_params(job_id)) == {"pubs": []}
    assert store.get_job("nope") is None


def test_claims_are_exclusive_across_threads(store):
    ids = {new_job(store) for _ in range(120)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def _claim_all(path: str, name: str, out) -> None:
    store = Store(path)
    while (job := store.claim(name)) is not None:
        out.put(job.id)
    out.put(None)


def test_claims_are_exclusive_across_processes(store):
    ids = {new_job(store) for _ in range(90)}
    queue = multiprocessing.get_context("spawn").Queue()
    procs = [multiprocessing.get_context("spawn").Process(
        target=_claim_all, args=(str(store.data_dir), f"p{i}", queue)) for i in range(3)]
    for p in procs:
        p.start()
    claimed, done = [], 0
    while done < len(procs):
        item = queue.get(timeout=60)
        if item is None:
            done += 1
        else:
            claimed.append(item)
    for p in procs:
        p.join(30)
    assert sorted(claimed) == sorted(ids)


def test_lost_worker_requeues_once_then_fails(store):
    job_id = new_job(store)
    assert store.claim("dead-1", now=100.0).id == job_id
    assert store.recover(lease_seconds=30, max_attempts=2, now=120.0) == []  # lease still fresh
    assert store.recover(lease_seconds=30, max_attempts=2, now=131.0) == [(job_id, "requeued")]
    assert store.get_job(job_id).status == JobStatus.QUEUED
    assert store.claim("dead-2", now=140.0).attempts == 2
    assert store.recover(lease_seconds=30, max_attempts=2, now=200.0) == [(job_id, "failed")]
    job = store.get_job(job_id)
    assert job.status == JobStatus.FAILED and job.reason_code == ReasonCode.WORKER_LOST
    assert "stopped responding" in store.job_result(job_id)


def test_heartbeat_keeps_the_lease(store):
    job_id = new_job(store)
    store.claim("alive", now=100.0)
    store.heartbeat("alive", now=150.0)
    assert store.recover(lease_seconds=30, max_attempts=2, now=170.0) == []
    assert store.get_job(job_id).status == JobStatus.RUNNING


def test_result_of_a_cancelled_job_is_discarded(store):
    job_id = new_job(store)
    store.claim("w")
    assert store.cancel(job_id)
    assert not store.finish(job_id, "w", '{"late": true}', 1.0)
    assert store.get_job(job_id).status == JobStatus.CANCELLED
    assert store.job_result(job_id) == "Cancelled by the user."
    assert not store.cancel(job_id)  # already final


def test_finish_by_another_worker_is_refused(store):
    job_id = new_job(store)
    store.claim("w1")
    assert not store.finish(job_id, "w2", "{}", 0.1)
    assert store.finish(job_id, "w1", "{}", 0.1)
    assert store.get_job(job_id).status == JobStatus.COMPLETED


def test_dedicated_session_runs_in_order_and_first(store):
    outside = new_job(store)
    session = store.add_session("u1", SessionMode.DEDICATED, "fake_manila", 600, 60)
    first = new_job(store, session_id=session.id)
    second = new_job(store, session_id=session.id)
    assert store.claim("w").id == outside  # the session is not active yet: FIFO
    assert store.claim("w").id == first
    assert store.get_session(session.id).state == SessionState.ACTIVE
    later = new_job(store)
    assert store.claim("w").id == later  # the session's second job waits for the first
    store.finish(first, "w", "{}", 0.1)
    store.finish(later, "w", "{}", 0.1)
    another_outside = new_job(store)
    assert store.claim("w").id == second  # active session goes ahead of older outside work
    store.finish(second, "w", "{}", 0.1)
    assert store.get_session(session.id).state == SessionState.ACTIVE  # keeps its place a while
    store.expire_sessions(now=time.time() + 61)  # idle past its interactive TTL of 60 s
    assert store.get_session(session.id).state == SessionState.INACTIVE
    assert store.claim("w").id == another_outside


def test_batch_jobs_run_in_parallel(store):
    batch = store.add_session("u1", SessionMode.BATCH, "fake_manila", 600, 60)
    a, b = new_job(store, session_id=batch.id), new_job(store, session_id=batch.id)
    assert {store.claim("w1").id, store.claim("w2").id} == {a, b}


def test_close_waits_for_queued_jobs_and_cancel_stops_them(store):
    session = store.add_session("u1", SessionMode.DEDICATED, None, 600, 60)
    job_id = new_job(store, session_id=session.id)
    store.close_session(session.id)
    assert store.get_session(session.id).state == SessionState.OPEN  # still has work
    store.claim("w")
    store.finish(job_id, "w", "{}", 0.1)
    assert store.get_session(session.id).state == SessionState.CLOSED

    other = store.add_session("u1", SessionMode.BATCH, None, 600, 60)
    queued = new_job(store, session_id=other.id)
    assert store.cancel_session(other.id, "stop") == [queued]
    assert store.get_job(queued).status == JobStatus.CANCELLED
    assert store.get_session(other.id).state == SessionState.CLOSED


def test_sessions_expire(store):
    session = store.add_session("u1", SessionMode.DEDICATED, None, 100, 10, now=1000.0)
    job_id = new_job(store, session_id=session.id)
    assert store.expire_sessions(now=1050.0) == []
    assert store.expire_sessions(now=1101.0) == [session.id]
    assert store.get_job(job_id).status == JobStatus.CANCELLED
    assert "maximum time" in store.get_session(session.id).close_reason


def test_listing_filters_and_counts(store):
    for i in range(30):
        new_job(store, user_id="u1" if i % 3 else "u2", backend="fake_a" if i % 2 else "fake_b",
                tags=["even"] if i % 2 == 0 else [], now=1000.0 + i)
    page, count = store.list_jobs(JobQuery(user_id="u1", limit=7, offset=14))
    assert count == 20 and len(page) == 6  # 20 jobs of u1: the last page is short
    assert [j.created for j in page] == sorted((j.created for j in page), reverse=True)
    _, count = store.list_jobs(JobQuery(user_id=None, backend="fake_b", tags=["even"]))
    assert count == 15
    _, count = store.list_jobs(JobQuery(user_id=None, created_after=1010.0, created_before=1019.0))
    assert count == 10
    dry_run = new_job(store, backend="mock_manila", dry_run=True)
    jobs, count = store.list_jobs(JobQuery(user_id=None, limit=100, include_mocks=False))
    assert count == 30 and dry_run not in {j.id for j in jobs}
    assert store.list_jobs(JobQuery(user_id=None, include_mocks=True))[1] == 31


def test_delete_removes_row_and_files(store):
    job_id = new_job(store)
    store.claim("w")
    store.finish(job_id, "w", "{}", 0.1)
    assert store.delete_job(job_id)
    assert store.get_job(job_id) is None
    assert not (store.params_dir / f"{job_id}.json").exists()
    assert not (store.results_dir / f"{job_id}.json").exists()
