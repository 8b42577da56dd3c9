"""Session TTLs, claim priority, batching and transitions, in-process on a real store with
explicit ``now=`` times: no server, no sleeps, no dependence on the machine's speed."""

from __future__ import annotations

import pytest

from qrs.batching import BatchRule
from qrs.states import JobStatus, ReasonCode, SessionMode, SessionState
from qrs.store import Store

from .support.store import new_job

T0 = 1_000_000.0
RULE = BatchRule(max_jobs=10, max_qubits=12)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "data")


def session(store: Store, mode=SessionMode.DEDICATED, max_ttl=100, interactive_ttl=10):
    return store.add_session("u1", mode, "fake_manila", max_ttl, interactive_ttl, now=T0).id


def test_max_ttl_counts_from_the_first_job_start_and_spares_the_running_job(store):
    sid = session(store)
    running = new_job(store, session_id=sid, now=T0 + 1)
    queued = new_job(store, session_id=sid, now=T0 + 2)
    assert store.claim("w", now=T0 + 50).id == running  # activates the session at T0+50
    assert store.expire_sessions(now=T0 + 120) == []    # 70 s since activation < 100
    assert store.expire_sessions(now=T0 + 151) == [sid]
    assert store.get_job(queued).status == JobStatus.CANCELLED
    assert store.get_job(queued).reason_code == ReasonCode.SESSION_CLOSED
    assert store.get_job(running).status == JobStatus.RUNNING  # a running job completes
    assert store.finish(running, "w", "{}", 1.0, now=T0 + 160)
    closed = store.get_session(sid)
    assert closed.state == SessionState.CLOSED and "maximum time to live" in closed.close_reason


def test_max_ttl_of_a_session_that_never_ran_counts_from_its_creation(store):
    sid = session(store)
    assert store.expire_sessions(now=T0 + 100) == []
    assert store.expire_sessions(now=T0 + 101) == [sid]


def test_interactive_ttl_deactivates_an_idle_session_and_a_start_reactivates_it(store):
    sid = session(store, max_ttl=10_000, interactive_ttl=10)
    first = new_job(store, session_id=sid, now=T0)
    store.claim("w", now=T0 + 1)
    store.expire_sessions(now=T0 + 30)  # running: never idle, however long it runs
    assert store.get_session(sid).state == SessionState.ACTIVE
    store.finish(first, "w", "{}", 1.0, now=T0 + 40)
    store.expire_sessions(now=T0 + 50)  # idle exactly 10 s: not yet
    assert store.get_session(sid).state == SessionState.ACTIVE
    store.expire_sessions(now=T0 + 51)
    assert store.get_session(sid).state == SessionState.INACTIVE
    second = new_job(store, session_id=sid, now=T0 + 60)  # an inactive session still accepts
    assert store.claim("w", now=T0 + 61).id == second
    reactivated = store.get_session(sid)
    assert reactivated.state == SessionState.ACTIVE and reactivated.last_job_started == T0 + 61
    assert reactivated.activated_at == T0 + 1  # the max TTL still counts from the first start


def test_only_an_active_dedicated_session_goes_first(store):
    sid = session(store, max_ttl=10_000, interactive_ttl=10)
    warm = new_job(store, session_id=sid, now=T0)
    store.claim("w", now=T0)
    store.finish(warm, "w", "{}", 1.0, now=T0 + 1)
    outside = new_job(store, now=T0 + 2)
    inside = new_job(store, session_id=sid, now=T0 + 3)
    assert store.claim("w", now=T0 + 4).id == inside  # active: ahead of older outside work
    store.finish(inside, "w", "{}", 1.0, now=T0 + 5)
    store.expire_sessions(now=T0 + 100)  # idle: inactive
    late = new_job(store, session_id=sid, now=T0 + 101)
    assert store.claim("w", now=T0 + 102).id == outside  # inactive: plain FIFO again
    assert store.claim("w", now=T0 + 103).id == late


def test_a_dedicated_session_runs_one_job_at_a_time_a_batch_all(store):
    dedicated, batch = session(store), session(store, mode=SessionMode.BATCH)
    d1, d2 = (new_job(store, session_id=dedicated, now=T0 + i) for i in (1, 2))
    b1, b2 = (new_job(store, session_id=batch, now=T0 + i) for i in (3, 4))
    claimed = [store.claim(f"w{i}", now=T0 + 10).id for i in range(3)]
    assert claimed == [d1, b1, b2]  # d2 waits for d1
    assert store.claim("w3", now=T0 + 11) is None
    store.finish(d1, "w0", "{}", 1.0, now=T0 + 12)
    assert store.claim("w0", now=T0 + 13).id == d2


def test_small_sampler_jobs_outside_sessions_are_claimed_together(store):
    small = [new_job(store, width=2, now=T0 + i) for i in range(3)]
    wide = new_job(store, width=20, now=T0 + 3)
    estimator = new_job(store, program_id="estimator", width=2, now=T0 + 4)
    other_backend = new_job(store, backend="fake_lima", width=2, now=T0 + 5)
    in_session = new_job(store, session_id=session(store, mode=SessionMode.BATCH), width=2,
                         now=T0 + 6)
    limited = new_job(store, width=2, max_execution_time=5, now=T0 + 7)  # its own time limit
    batch = store.claim_batch("w", RULE, now=T0 + 10)
    assert [job.id for job in batch] == small
    assert all(job.status == JobStatus.RUNNING and job.attempts == 1 for job in batch)
    assert "in a batch of 3 small jobs" in store.job_logs(small[0])[-1][1]
    assert [job.id for job in store.claim_batch("w", RULE, now=T0 + 11)] == [wide]
    assert [job.id for job in store.claim_batch("w", RULE, now=T0 + 12)] == [estimator]
    assert [job.id for job in store.claim_batch("w", RULE, now=T0 + 13)] == [other_backend]
    assert [job.id for job in store.claim_batch("w", RULE, now=T0 + 14)] == [in_session]
    assert [job.id for job in store.claim_batch("w", RULE, now=T0 + 15)] == [limited]


def test_release_requeues_only_this_workers_jobs_and_gives_the_attempt_back(store):
    mine, theirs = new_job(store, now=T0), new_job(store, now=T0 + 1)
    store.claim("me", now=T0 + 2)
    store.claim("them", now=T0 + 2)
    assert store.release("me", now=T0 + 3) == [mine]
    job = store.get_job(mine)
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.claimed_by is None
    assert "shut down before the job finished" in store.job_logs(mine)[-1][1]
    assert store.get_job(theirs).status == JobStatus.RUNNING
    assert not store.finish(mine, "me", "{}", 1.0)  # the late result of a released job


def test_a_cancel_closes_a_closing_session_once_nothing_is_pending(store):
    sid = session(store)
    job_id = new_job(store, session_id=sid, now=T0)
    store.close_session(sid, now=T0 + 1)
    assert store.get_session(sid).state == SessionState.OPEN  # a job is still queued
    assert store.cancel(job_id, now=T0 + 2)
    closed = store.get_session(sid)
    assert closed.state == SessionState.CLOSED and closed.closed_at == T0 + 2
    assert store.job_result(job_id) == "Cancelled by the user."


def test_a_lease_failure_writes_the_reason_as_the_result(store):
    job_id = new_job(store, now=T0)
    store.claim("gone", now=T0)
    assert store.recover(lease_seconds=30, max_attempts=1, now=T0 + 31) == [(job_id, "failed")]
    job = store.get_job(job_id)
    assert job.status == JobStatus.FAILED and job.finished_at == T0 + 31
    assert store.job_result(job_id) == job.reason
    assert store.heartbeat("gone", now=T0 + 40) == 0  # a final job's lease is never renewed
