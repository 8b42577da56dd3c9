"""The production layout: gunicorn web workers that run no jobs, plus ``qrs worker``s.

Real gunicorn (2 web workers, ``QRS_START_RUNNER=0``) and two real ``qrs worker``
processes on one data directory, driven by the stock client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from qiskit_ibm_runtime import SamplerV2

from .conftest import connect
from .support.deploy import StoreReader, gunicorn_workers
from .support.payloads import bell, isa
from .support.server import ROOT, ServerProcess
from .test_isolation import job_process, named, open_gate


class WorkerProcess:
    """One ``qrs worker`` on a data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.log_path = data_dir.parent / f"worker-{os.urandom(3).hex()}.log"
        full_env = {**os.environ, "QRS_DATA_DIR": str(data_dir), "QRS_LOG_LEVEL": "INFO",
                    **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "qrs.cli", "worker"], cwd=ROOT,
                                     env=full_env, stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("layout") / "data"
    env = {"QRS_EXECUTOR": "tests.executors:TrialExecutor", "QRS_SHUTDOWN_GRACE_SECONDS": "2"}
    web = ServerProcess(data_dir, gunicorn=True, workers=2,
                        env={**env, "QRS_START_RUNNER": "0"}).start(timeout=180)
    workers = [WorkerProcess(data_dir, env) for _ in range(2)]
    yield web, workers
    for worker in workers:
        worker.stop(signal.SIGKILL)
    web.stop()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    found, frontier = set(), {pid}
    while frontier:
        children = gunicorn_workers(frontier.pop())
        frontier |= children - found
        found |= children
    return found


def test_jobs_run_in_qrs_workers_never_in_web_workers(layout):
    web, workers = layout
    backend = connect(web).backend("fake_manila")
    jobs = [SamplerV2(mode=backend).run([isa(bell(), backend)], shots=300) for _ in range(6)]
    for job in jobs:
        counts = job.result()[0].data.meas.get_counts()
        assert sum(counts.values()) == 300 and counts.get("00", 0) + counts.get("11", 0) > 240
    reader = StoreReader(web.data_dir)
    worker_pids = {w.proc.pid for w in workers}
    for job in jobs:
        assert int(reader.job(job.job_id())["claimed_by"].split(":")[-2]) in worker_pids
    web_workers = gunicorn_workers(web.proc.pid)
    assert len(web_workers) == 2
    for pid in web_workers:  # web workers start no job process
        assert not gunicorn_workers(pid)


def test_sigterm_on_a_worker_requeues_its_job_for_the_other(layout):
    web, workers = layout
    backend = connect(web).backend("fake_manila")
    reader = StoreReader(web.data_dir)
    job = SamplerV2(mode=backend).run([named(backend, "busy:handover")], shots=20)
    process = job_process(reader, job.job_id())
    holder = next(w for w in workers
                  if w.proc.pid == int(reader.job(job.job_id())["claimed_by"].split(":")[-2]))
    assert process in descendants(holder.proc.pid)
    assert holder.stop(signal.SIGTERM) == 0  # grace 2 s: the busy job cannot finish
    assert any("shut down before the job finished" in line
               for line in reader.log_lines(job.job_id()))
    open_gate(web, "handover")
    assert sum(job.result()[0].data.meas.get_counts().values()) == 20  # the other one ran it
    assert reader.job(job.job_id())["attempts"] == 1  # the interrupted attempt was given back
