"""The runner without HTTP: claim → execute → record, failures, time limits, cancels."""

from __future__ import annotations

import json
import threading
import time

import pytest

from qrs.codec import decode_result
from qrs.config import Config
from qrs.runner import Runner
from qrs.states import JobStatus, ReasonCode
from qrs.store import NewJob, Store

from .executors import AllZerosExecutor, FailingExecutor, SlowExecutor
from .support.payloads import sampler_params
from .support.polling import wait_until


def make_runner(tmp_path, executor, **config) -> Runner:
    config.setdefault("batch_max_jobs", 1)
    cfg = Config(data_dir=str(tmp_path / "data"), executor_threads=1, **config)
    return Runner(Store(cfg.data_dir), executor, cfg)  # set up in its job process only


def submit(runner: Runner, shots: int = 100, **fields) -> str:
    return runner.store.add_job(NewJob(**{
        "user_id": "u", "program_id": "sampler", "backend": "fake_manila",
        "params_text": json.dumps(sampler_params(shots=shots)), "width": 2, **fields})).id


def test_drain_runs_queued_jobs_to_completion(tmp_path):
    runner = make_runner(tmp_path, AllZerosExecutor())
    ids = [submit(runner, shots=10 + i) for i in range(3)]
    assert runner.drain() == 3
    for index, job_id in enumerate(ids):
        assert runner.store.get_job(job_id).status == JobStatus.COMPLETED
        counts = decode_result(runner.store.job_result(job_id))[0].data.meas.get_counts()
        assert counts == {"00": 10 + index}
        lines = [line for _, line in runner.store.job_logs(job_id)]
        assert lines[0] == "Job received and queued." and lines[-1] == "Job completed."
        assert any("zeros for" in line for line in lines)  # executor lines reach the log


def test_executor_errors_fail_the_job_with_the_message(tmp_path):
    runner = make_runner(tmp_path, FailingExecutor())
    job_id = submit(runner)
    runner.drain()
    job = runner.store.get_job(job_id)
    assert job.status == JobStatus.FAILED
    assert "simulator exploded on purpose" in job.reason
    assert "simulator exploded" in runner.store.job_result(job_id)


def test_time_limit_cancels_with_reason_code_1305(tmp_path):
    executor = SlowExecutor(seconds=5)
    runner = make_runner(tmp_path, executor)
    job_id = submit(runner, max_execution_time=1)
    runner.drain()
    job = runner.store.get_job(job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.reason_code == ReasonCode.RAN_TOO_LONG
    assert "maximum execution time" in job.reason


def test_cancel_while_running_discards_the_result(tmp_path):
    runner = make_runner(tmp_path, SlowExecutor(seconds=3))
    job_id = submit(runner)
    worker = threading.Thread(target=runner.drain)
    worker.start()
    wait_until(lambda: runner.store.get_job(job_id).status == JobStatus.RUNNING, timeout=10,
               interval=0.01, what="the job to run")
    assert runner.store.cancel(job_id)
    worker.join(10)
    assert runner.store.get_job(job_id).status == JobStatus.CANCELLED
    assert runner.store.job_result(job_id) == "Cancelled by the user."


def test_threads_pick_up_work_and_wait_final_returns_it(tmp_path):
    runner = make_runner(tmp_path, AllZerosExecutor())
    runner.start()
    try:
        job_id = submit(runner)
        runner.wake()
        job = runner.wait_final(job_id, timeout=20)
        assert job.status == JobStatus.COMPLETED
    finally:
        runner.stop(grace_seconds=5)


def test_unknown_program_fails_cleanly(tmp_path):
    runner = make_runner(tmp_path, AllZerosExecutor())
    job_id = runner.store.add_job(NewJob(user_id="u", program_id="nonesuch",
                                         backend="fake_manila",
                                         params_text=json.dumps(sampler_params()))).id
    runner.drain()
    assert "not supported" in runner.store.get_job(job_id).reason


@pytest.mark.parametrize("lease", [0.5])
def test_maintenance_recovers_jobs_of_a_dead_worker(tmp_path, lease):
    runner = make_runner(tmp_path, AllZerosExecutor(), job_lease_seconds=lease)
    job_id = submit(runner)
    runner.store.claim("a-worker-that-died", now=time.time() - 10)
    runner.maintain()
    assert runner.store.get_job(job_id).status == JobStatus.QUEUED
    runner.drain()
    job = runner.store.get_job(job_id)
    assert job.status == JobStatus.COMPLETED and job.attempts == 2


def test_small_sampler_jobs_run_as_one_batch(tmp_path):
    runner = make_runner(tmp_path, AllZerosExecutor(), batch_max_jobs=8, batch_max_qubits=4)
    ids = [submit(runner, shots=5 + i) for i in range(5)]
    wide = submit(runner, width=5)  # wider than batch_max_qubits: runs on its own
    assert runner.drain() == 2
    for index, job_id in enumerate(ids):
        assert runner.store.get_job(job_id).status == JobStatus.COMPLETED
        counts = decode_result(runner.store.job_result(job_id))[0].data.meas.get_counts()
        assert counts == {"00": 5 + index}  # each job got its own shots back
        assert any("batch of 5" in line for _, line in runner.store.job_logs(job_id))
    assert runner.store.get_job(wide).status == JobStatus.COMPLETED


def test_jobs_with_different_time_limits_never_share_a_batch(tmp_path):
    """A batch shares one time limit, so only jobs with the same limit are batched: one
    user's short ``max_execution_time`` can never cancel another user's job."""
    runner = make_runner(tmp_path, AllZerosExecutor(), batch_max_jobs=8, batch_max_qubits=4)
    alice = [submit(runner, user_id="alice") for _ in range(2)]
    bob = [submit(runner, user_id="bob", max_execution_time=1) for _ in range(2)]
    assert runner.drain() == 2  # one batch per limit
    for ids in (alice, bob):
        for job_id in ids:
            assert runner.store.get_job(job_id).status == JobStatus.COMPLETED
            assert any("batch of 2" in line for _, line in runner.store.job_logs(job_id))
