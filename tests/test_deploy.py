"""Production deployment: gunicorn with several workers, crashes, restarts, shutdown.

Every test runs real gunicorn (``qrs serve``) with real worker processes, real Aer and
the real SQLite file, and checks what the store recorded by reading that file directly.
Figures (jobs/s, re-queue time, lock waits) are printed, never asserted; run with ``-s``
to see them. Noise is off where the test is about the server, not the physics: a noisy
fake_manila job costs ~10x the CPU of an ideal one and proves nothing more here.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests

from qrs.config import Config
from qrs.store import JobQuery, NewJob, Store

from .support.deploy import (BACKEND, FINAL, StoreReader, fetch_results, gunicorn_workers,
                             lock_waits, new_key, sampler_body, submit, submit_many, worker_pid)
from .support.server import ServerProcess

LOAD_JOBS = 1000
LOAD_THREADS = 8
SHOTS = 16
NOISY_SHOTS = 1000  # P(00)+P(11) ≈ 0.93 on fake_manila: the 0.8 bound is > 10 sigma away
SLOW_SHOTS = 60_000  # noisy: ~0.5 s per pub on one core


def decode_result(text: str):
    from qiskit_ibm_runtime import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)


def bell_counts_ok(text: str, shots: int, pubs: int = 1, noisy: bool = False) -> bool:
    """A decoded Bell result: ``pubs`` pubs of ``shots`` shots, only 00 and 11 when ideal,
    mostly 00 and 11 (fake_manila's errors stay well under 20 %) when noisy."""
    result = decode_result(text)
    if len(result) != pubs:
        return False
    for pub in result:
        counts = pub.data.meas.get_counts()
        if sum(counts.values()) != shots:
            return False
        correlated = counts.get("00", 0) + counts.get("11", 0)
        if correlated < (0.8 * shots if noisy else shots):
            return False
    return True


# --------------------------------------------------------------------- the load test
@pytest.fixture(scope="module")
def load_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("load") / "data", gunicorn=True, workers=4,
                           env={"QRS_NOISE": "0"}).start(timeout=180)
    yield server
    server.stop()


def test_thousand_jobs_four_workers_each_run_exactly_once(load_server):
    """1,000 raw-HTTP submissions from 8 threads → 1,000 jobs, each run once, each result
    served (by whichever worker answers); no "database is locked" anywhere."""
    reader = StoreReader(load_server.data_dir)
    body = sampler_body(shots=SHOTS)
    started = time.monotonic()
    ids = submit_many(load_server.url, body, LOAD_JOBS, threads=LOAD_THREADS)
    submitted = time.monotonic() - started
    assert len(set(ids)) == LOAD_JOBS

    def all_final(r: StoreReader):
        return all(status in FINAL for status in r.statuses(ids).values())

    reader.wait(all_final, timeout=600, every=0.5)
    elapsed = time.monotonic() - started

    statuses = reader.statuses()
    assert len(statuses) == LOAD_JOBS, "rows other than the submitted jobs exist"
    assert set(statuses.values()) == {"Completed"}
    attempts = dict(reader.query("SELECT id, attempts FROM jobs"))
    assert set(attempts.values()) == {1}
    starts = reader.started_counts()
    assert set(starts) == set(ids) and set(starts.values()) == {1}
    runners = {w for (w,) in reader.query("SELECT DISTINCT claimed_by FROM jobs")}

    results = fetch_results(load_server.url, ids, threads=LOAD_THREADS)
    assert {code for code, _, _ in results.values()} == {200}
    bad = [job_id for job_id, (_, text, _) in results.items() if not bell_counts_ok(text, SHOTS)]
    assert not bad, f"{len(bad)} results do not decode to Bell counts, e.g. {bad[:3]}"
    served_by = {pid for _, _, pid in results.values()}
    assert len(served_by) >= 2, "results were all served by one worker"

    log = load_server.log()
    full_log = load_server.log_path.read_text(errors="replace")
    assert "database is locked" not in full_log, log
    assert "Traceback" not in full_log, log
    waits = lock_waits(full_log)
    print(f"\n{LOAD_JOBS} jobs, {LOAD_THREADS} client threads, 4 workers: submitted in "
          f"{submitted:.1f} s ({LOAD_JOBS / submitted:.0f}/s), all Completed in {elapsed:.1f} s "
          f"= {LOAD_JOBS / elapsed:.1f} jobs/s; run by {len(runners)} runners, results served "
          f"by {len(served_by)} workers; SQLite write-lock waits > 100 ms: {len(waits)}"
          + (f" (max {max(waits):.0f} ms)" if waits else ""))


def test_idempotency_key_returns_the_first_job(load_server):
    """A retried POST with the same Idempotency-Key gets the same job, not a second one."""
    reader = StoreReader(load_server.data_dir)
    body = sampler_body(shots=SHOTS)
    key = new_key()
    with requests.Session() as session:
        first = submit(session, load_server.url, body, idempotency_key=key)
        again = submit(session, load_server.url, body, idempotency_key=key)
        other = submit(session, load_server.url, body, idempotency_key=new_key())
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert reader.query("SELECT COUNT(*) FROM jobs WHERE idempotency_key=?", (key,)) == [(1,)]


def test_concurrent_retries_with_one_key_make_one_job(tmp_path):
    """Eight processes' worth of racing inserts: the unique index lets exactly one win."""
    from concurrent.futures import ThreadPoolExecutor

    store = Store(tmp_path / "data")
    new = NewJob(user_id="u", program_id="sampler", backend="fake_manila",
                 params_text='{"pubs": []}', idempotency_key="retry-1")
    with ThreadPoolExecutor(8) as pool:
        ids = set(job.id for job in pool.map(lambda _: store.add_job(new), range(32)))
    assert len(ids) == 1
    assert len(list(store.params_dir.iterdir())) == 1  # losers removed their params files


# ------------------------------------------------------- crashes, restarts, shutdown
#: Noise on here: it is what makes a 60,000-shot pub take about half a second (an ideal Bell
#: circuit's shots are sampled from one statevector, far too fast to be killed mid-run).
LEASE_ENV = {"QRS_JOB_LEASE_SECONDS": "3", "QRS_HEARTBEAT_SECONDS": "1",
             "QRS_MAX_ATTEMPTS": "2", "GUNICORN_CMD_ARGS": "--graceful-timeout 15"}
GRACE = 10  # graceful timeout − gunicorn.conf.py's 5 s margin


@pytest.fixture(scope="module")
def crash_server(tmp_path_factory):
    """Two workers, 3 s leases, 10 s of grace on SIGTERM; no batching (a slow job must
    hold its slot alone, never share a batch with the tiny jobs queued behind it)."""
    server = ServerProcess(tmp_path_factory.mktemp("crash") / "data", gunicorn=True,
                           workers=2, env={**LEASE_ENV, "QRS_BATCH_MAX_JOBS": "1"}
                           ).start(timeout=180)
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def slow_body():
    """A job of about ten seconds: 12 noisy 60,000-shot pubs of a deeper Bell circuit."""
    return sampler_body(num_pubs=12, shots=SLOW_SHOTS, depth=8)


def _submit_one(server: ServerProcess, body: str) -> str:
    with requests.Session() as session:
        answer = submit(session, server.url, body)
    answer.raise_for_status()
    return answer.json()["id"]


def _running(job_id: str):
    def running(r: StoreReader):
        job = r.job(job_id)
        return job if job.get("status") == "Running" and job.get("claimed_by") else None
    return running


def _final(job_id: str):
    def final(r: StoreReader):
        job = r.job(job_id)
        return job if job.get("status") in FINAL else None
    return final


def test_sigkilled_worker_job_is_requeued_then_completes(crash_server, slow_body):
    reader = StoreReader(crash_server.data_dir)
    job_id = _submit_one(crash_server, slow_body)
    job = reader.wait(_running(job_id), timeout=60, every=0.05)
    victim = worker_pid(reader, job_id)
    assert victim in gunicorn_workers(crash_server.proc.pid)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()

    def requeued(r: StoreReader):
        return any("stopped responding; job re-queued" in line for line in r.log_lines(job_id))

    reader.wait(requeued, timeout=60, every=0.1)
    requeue_s = time.monotonic() - killed
    done = reader.wait(_final(job_id), timeout=120, every=0.2)
    assert done["status"] == "Completed", done
    assert done["attempts"] == 2
    assert done["claimed_by"] != job["claimed_by"]
    answer = requests.get(f"{crash_server.url}/api/v1/jobs/{job_id}/results", timeout=30)
    assert bell_counts_ok(answer.text, SLOW_SHOTS, pubs=12, noisy=True)
    print(f"\nSIGKILLed worker {victim}: job re-queued {requeue_s:.1f} s later "
          f"(lease 3 s, heartbeat 1 s), Completed {time.monotonic() - killed:.1f} s after the kill")


def test_job_whose_worker_dies_twice_fails_with_reason(crash_server, slow_body):
    reader = StoreReader(crash_server.data_dir)
    job_id = _submit_one(crash_server, slow_body)
    for attempt in (1, 2):
        def claimed_again(r: StoreReader, attempt=attempt):
            job = r.job(job_id)
            return job if job["status"] == "Running" and job["attempts"] == attempt else None
        reader.wait(claimed_again, timeout=60, every=0.05)
        os.kill(worker_pid(reader, job_id), signal.SIGKILL)
    done = reader.wait(_final(job_id), timeout=60, every=0.2)
    assert done["status"] == "Failed"
    assert done["reason_code"] == 1517
    assert "stopped responding 2 times" in done["reason"]
    answer = requests.get(f"{crash_server.url}/api/v1/jobs/{job_id}", timeout=30).json()
    assert answer["status"] == "Failed" and "stopped responding" in answer["state"]["reason"]


def test_sigkill_whole_server_then_restart_keeps_and_runs_everything(crash_server, slow_body):
    reader = StoreReader(crash_server.data_dir)
    tiny = sampler_body(shots=NOISY_SHOTS)
    finished = submit_many(crash_server.url, tiny, 10, threads=4)
    reader.wait(lambda r: all(s == "Completed" for s in r.statuses(finished).values()), 120)
    # Two slow jobs occupy both workers' runner slots; the tiny ones behind them queue.
    slow = [_submit_one(crash_server, slow_body) for _ in range(2)]

    def slow_ones_taken(r: StoreReader):  # claimed, one at least still running
        states = [r.job(i)["status"] for i in slow]
        return "Queued" not in states and "Running" in states

    reader.wait(slow_ones_taken, 60, every=0.05)
    queued = submit_many(crash_server.url, tiny, 10, threads=4)
    os.killpg(crash_server.proc.pid, signal.SIGKILL)
    crash_server.proc.wait(30)
    at_kill = reader.statuses(slow + queued)
    assert "Queued" in at_kill.values(), at_kill
    assert "Running" in at_kill.values(), at_kill

    crash_server.start(timeout=180)
    everything = finished + slow + queued
    reader.wait(lambda r: all(s in FINAL for s in r.statuses(everything).values()), 180)
    assert set(reader.statuses(everything).values()) == {"Completed"}
    results = fetch_results(crash_server.url, everything, threads=4)
    for job_id in finished + queued:
        assert bell_counts_ok(results[job_id][1], NOISY_SHOTS, noisy=True), job_id
    for job_id in slow:
        assert bell_counts_ok(results[job_id][1], SLOW_SHOTS, pubs=12, noisy=True), job_id
        # Killed mid-run once → re-queued after the lease and run again.
        assert reader.job(job_id)["attempts"] == (2 if at_kill[job_id] == "Running" else 1)


@pytest.fixture(scope="module")
def gated_server(tmp_path_factory):
    """Two workers whose executor holds each job until the test opens its gate."""
    server = ServerProcess(tmp_path_factory.mktemp("gated") / "data", gunicorn=True,
                           workers=2, env={**LEASE_ENV,
                                           "QRS_EXECUTOR": "tests.executors:GatedExecutor"})
    yield server.start(timeout=180)
    server.stop(signal.SIGKILL)


def gated_body(gate: str) -> str:
    """A Sampler job that runs until ``open_gate(server, gate)`` (see ``GatedExecutor``)."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from .support.payloads import bell, isa, job_body, sampler_params

    circuit = isa(bell(), FakeManilaV2())
    circuit.name = f"gate:{gate}"
    return job_body(sampler_params(circuit, 16), backend=BACKEND)


def open_gate(server: ServerProcess, gate: str) -> None:
    (server.data_dir / "gates").mkdir(exist_ok=True)
    (server.data_dir / "gates" / gate).touch()


def test_sigterm_lets_running_jobs_finish_and_requeues_the_rest(gated_server):
    """SIGTERM: a job that finishes within the grace period completes; one that cannot
    is re-queued at once (no lease wait, attempt given back) and completes after restart.

    Which job ends when is decided by the test (gates), never by the machine's speed."""
    reader = StoreReader(gated_server.data_dir)
    never = _submit_one(gated_server, gated_body("never"))
    reader.wait(_running(never), timeout=60, every=0.05)
    short = _submit_one(gated_server, gated_body("short"))
    reader.wait(_running(short), timeout=60, every=0.05)
    sigterm_at = time.time()
    os.killpg(gated_server.proc.pid, signal.SIGTERM)
    open_gate(gated_server, "short")  # it can finish now, well within the grace period
    gated_server.proc.wait(60)
    took = time.time() - sigterm_at
    assert gated_server.proc.returncode == 0, gated_server.log()
    short_job, never_job = reader.job(short), reader.job(never)
    assert short_job["status"] == "Completed", short_job
    assert short_job["finished_at"] > sigterm_at  # it was running when SIGTERM came
    assert short_job["attempts"] == 1
    assert never_job["status"] == "Queued" and never_job["attempts"] == 0, never_job
    assert any("shut down before the job finished" in line for line in reader.log_lines(never))
    print(f"\nSIGTERM → running job finished {short_job['finished_at'] - sigterm_at:.1f} s "
          f"later; server exited after {took:.1f} s (grace {GRACE} s), the unfinished job "
          "re-queued")

    gated_server.start(timeout=180)
    reader.wait(_running(never), timeout=60, every=0.1)  # the restarted server takes it
    open_gate(gated_server, "never")
    assert reader.wait(_final(never), 60)["status"] == "Completed"


# ---------------------------------------------------------- concurrency and retention
def test_executor_threads_and_aer_threads_divide_the_cores():
    """QRS_EXECUTOR_THREADS defaults to cores ÷ (2 × workers); Aer gets the rest of each
    worker's share, so workers × executor threads × Aer threads ≈ cores."""
    from qrs.config import _cpu_count
    from qrs.executors.local import LocalExecutor
    from qrs.metadata import BackendMetadataProvider

    cores = _cpu_count()
    for workers in (1, 2, 4):
        config = Config.from_env({"QRS_WORKERS": str(workers)})
        assert config.executor_threads == max(1, cores // (2 * workers))
        executor = LocalExecutor()
        executor.setup(config, BackendMetadataProvider())
        assert executor.threads == max(1, cores // (workers * config.executor_threads))
        assert workers * config.executor_threads * executor.threads <= max(cores, workers)
    config = Config.from_env({"QRS_WORKERS": "4", "QRS_EXECUTOR_THREADS": "3"})
    executor = LocalExecutor()
    executor.setup(config, BackendMetadataProvider())
    assert config.executor_threads == 3
    simulator = executor.simulator("fake_manila")
    assert simulator.options.max_parallel_threads == max(1, cores // 12)


def test_retention_prunes_old_final_jobs_and_their_files(tmp_path):
    from qrs.executors.local import LocalExecutor
    from qrs.runner import Runner

    store = Store(tmp_path / "data")
    day = 86400.0
    now = time.time()

    def job(age_days: float, final: bool) -> str:
        created = now - age_days * day
        new = store.add_job(NewJob(user_id="u", program_id="sampler", backend="fake_manila",
                                   params_text="{}"), now=created)
        if final:
            assert store.claim("w", now=created).id == new.id
            assert store.finish(new.id, "w", "{}", 0.1, now=created)
        return new.id

    old, recent, old_pending = job(10, True), job(1, True), job(10, False)
    config = Config(data_dir=str(tmp_path / "data"), job_retention_days=7)
    Runner(store, LocalExecutor(), config).maintain(now=now)
    assert store.get_job(old) is None
    assert not (store.params_dir / f"{old}.json").exists()
    assert not (store.results_dir / f"{old}.json").exists()
    assert store.job_logs(old) == []
    assert store.get_job(recent).status.value == "Completed"
    assert store.get_job(old_pending).status.value == "Queued"  # never pruned while pending
    assert sorted(p.name for p in store.results_dir.iterdir()) == [f"{recent}.json"]


def test_disk_usage_is_cached_and_shown_in_health(tmp_path, client):
    store = Store(tmp_path / "data")
    first = store.disk_usage_bytes()
    (store.results_dir / "big.json").write_bytes(b"x" * 100_000)
    assert store.disk_usage_bytes() == first  # cached for a minute
    assert store.disk_usage_bytes(max_age_seconds=0) >= first + 100_000
    body = client.get("/health").get_json()
    assert body["data_dir_bytes"] > 0 and body["disk_free_bytes"] > 0


def test_submission_that_fails_on_a_locked_database_leaves_nothing(tmp_path):
    """A write that times out on SQLite's lock (the API answers 500, the client retries)
    leaves neither a row nor a params file; the retry then stores the job once."""
    import sqlite3

    store = Store(tmp_path / "data", busy_timeout_ms=200)
    new = NewJob(user_id="u", program_id="sampler", backend="fake_manila", params_text="{}")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.add_job(new)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert list(store.params_dir.iterdir()) == []
    assert store.list_jobs(JobQuery(user_id=None))[1] == 0
    job = store.add_job(new)
    assert store.list_jobs(JobQuery(user_id=None))[1] == 1
    assert store.job_params(job.id) == "{}"
