"""Jobs run in supervised job processes: long jobs finish, limits stop the work, a
runaway job harms only itself.

Everything here runs through real gunicorn with 4 workers and the default lease settings
(``QRS_JOB_LEASE_SECONDS=30``), the stock client and real Aer. Jobs that misbehave do so
by construction (``tests.executors.TrialExecutor``: circuits named ``busy:``, ``abort``,
``allocate:``, ``grow:``), and a "long" job is held busy in Aer until the test opens its
gate, so no test depends on the machine's speed.
"""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest
import requests
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError, RuntimeJobMaxTimeoutError

from .conftest import connect
from .support.deploy import StoreReader, gunicorn_workers
from .support.payloads import bell, isa
from .support.server import ServerProcess

LEASE_SECONDS = 30.0  # Config's default: the tests below rely on it not being shortened
JOB_MEMORY_MB = 1500


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("isolation") / "data", gunicorn=True,
                           workers=4, env={"QRS_EXECUTOR": "tests.executors:TrialExecutor",
                                           "QRS_JOB_MEMORY_MB": str(JOB_MEMORY_MB)})
    yield server.start(timeout=240)
    server.stop()


@pytest.fixture(scope="module")
def backend(server):
    return connect(server).backend("fake_manila")


def named(backend, name: str) -> QuantumCircuit:
    """A Bell circuit for ``backend`` whose name tells ``TrialExecutor`` what to do."""
    circuit = isa(bell(), backend)
    circuit.name = name
    return circuit


def open_gate(server: ServerProcess, gate: str) -> None:
    (server.data_dir / "gates").mkdir(exist_ok=True)
    (server.data_dir / "gates" / gate).touch()


def job_process(reader: StoreReader, job_id: str, timeout: float = 120) -> int:
    """The pid of the job process running the job, from its log line."""
    def line(r: StoreReader):
        for text in r.log_lines(job_id):
            if text.startswith("Running in job process "):
                return int(text.split()[4])
        return None
    return reader.wait(line, timeout=timeout, every=0.05)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process; ``None`` once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (int(fields[11]) + int(fields[12])) / os.sysconf(
        "SC_CLK_TCK")


def wait_gone(pid: int, timeout: float) -> float:
    """Seconds until ``pid`` no longer runs; fails after ``timeout``."""
    start = time.monotonic()
    while cpu_seconds(pid) is not None:
        assert time.monotonic() - start < timeout, f"process {pid} still runs"
        time.sleep(0.02)
    return time.monotonic() - start


def assert_still_serving(server: ServerProcess, backend, workers: set[int]) -> None:
    """Same gunicorn workers as before, and an ordinary job still completes."""
    assert gunicorn_workers(server.proc.pid) == workers
    counts = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=200).result()[0]
    assert sum(counts.data.meas.get_counts().values()) == 200


def test_long_job_runs_once_while_the_server_keeps_answering(server, backend):
    """A job busy in Aer for 3 × the lease completes with one attempt and one start,
    while status polls and backend listings keep answering."""
    reader = StoreReader(server.data_dir)
    job = SamplerV2(mode=backend).run([named(backend, "busy:long")], shots=100)
    job_process(reader, job.job_id())
    running_at = reader.job(job.job_id())["running_at"]
    latencies: list[float] = []
    errors: list[str] = []
    with requests.Session() as http:
        while time.time() - running_at < 3 * LEASE_SECONDS:
            for path in (f"/api/v1/jobs/{job.job_id()}?exclude_params=true", "/api/v1/backends"):
                start = time.perf_counter()
                try:
                    answer = http.get(server.url + path, timeout=10)
                    if answer.status_code != 200:
                        errors.append(f"{path}: {answer.status_code}")
                except requests.RequestException as exc:
                    errors.append(f"{path}: {exc}")
                latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
    assert not errors, errors[:5]
    assert reader.job(job.job_id())["status"] == "Running"
    open_gate(server, "long")
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    row = reader.job(job.job_id())
    assert row["attempts"] == 1
    assert reader.started_counts()[job.job_id()] == 1
    assert not any("re-queued" in line for line in reader.log_lines(job.job_id()))
    p99 = sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000
    print(f"\n{len(latencies)} requests during a {3 * LEASE_SECONDS:.0f} s Aer-bound job: "
          f"median {statistics.median(latencies) * 1000:.0f} ms, p99 {p99:.0f} ms")


def test_cancel_kills_the_job_process_within_two_seconds(server, backend):
    reader = StoreReader(server.data_dir)
    workers = gunicorn_workers(server.proc.pid)
    job = SamplerV2(mode=backend).run([named(backend, "busy:never")], shots=10)
    pid = job_process(reader, job.job_id())
    first = cpu_seconds(pid)
    reader.wait(lambda r: (cpu_seconds(pid) or 0) > (first or 0) + 0.2, timeout=60)  # busy
    cancelled_at = time.monotonic()
    job.cancel()
    reader.wait(lambda r: r.job(job.job_id())["status"] == "Cancelled", timeout=2, every=0.02)
    gone = wait_gone(pid, timeout=2 - (time.monotonic() - cancelled_at))
    print(f"\ncancelled; job process {pid} gone {gone * 1000:.0f} ms later")
    assert job.status() == "CANCELLED"
    assert_still_serving(server, backend, workers)


def test_time_limit_kills_the_job_process_with_code_1305(server, backend):
    reader = StoreReader(server.data_dir)
    workers = gunicorn_workers(server.proc.pid)
    sampler = SamplerV2(mode=backend)
    sampler.options.max_execution_time = 3
    job = sampler.run([named(backend, "busy:never")], shots=10)
    pid = job_process(reader, job.job_id())
    with pytest.raises(RuntimeJobMaxTimeoutError):
        job.result()
    row = reader.job(job.job_id())
    assert row["status"] == "Cancelled" and row["reason_code"] == 1305
    assert "maximum execution time of 3 s" in row["reason"]
    wait_gone(pid, timeout=5)
    assert_still_serving(server, backend, workers)


@pytest.mark.parametrize("name, words", [
    ("allocate:40000", ["ran out of memory", "QRS_JOB_MEMORY_MB"]),
    (f"grow:{3 * JOB_MEMORY_MB}", [f"over its limit of {JOB_MEMORY_MB:,} MiB",
                                   "QRS_JOB_MEMORY_MB", "not retried"]),
])
def test_memory_limit_fails_only_that_job_and_is_not_retried(server, backend, name, words):
    reader = StoreReader(server.data_dir)
    workers = gunicorn_workers(server.proc.pid)
    job = SamplerV2(mode=backend).run([named(backend, name)], shots=10)
    with pytest.raises(RuntimeJobFailureError) as info:
        job.result()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    row = reader.job(job.job_id())
    assert row["status"] == "Failed" and row["reason_code"] == 1518 and row["attempts"] == 1
    assert_still_serving(server, backend, workers)


def test_a_sigkilled_job_process_fails_its_job_naming_the_signal(server, backend):
    reader = StoreReader(server.data_dir)
    workers = gunicorn_workers(server.proc.pid)
    job = SamplerV2(mode=backend).run([named(backend, "busy:never")], shots=10)
    os.kill(job_process(reader, job.job_id()), signal.SIGKILL)
    with pytest.raises(RuntimeJobFailureError, match=r"killed by signal 9 \(SIGKILL\)"):
        job.result()
    row = reader.job(job.job_id())
    assert row["status"] == "Failed" and row["reason_code"] == 1519 and row["attempts"] == 1
    assert_still_serving(server, backend, workers)


def test_an_aborting_job_process_fails_its_job_naming_the_signal(server, backend):
    reader = StoreReader(server.data_dir)
    workers = gunicorn_workers(server.proc.pid)
    others = [SamplerV2(mode=backend).run([isa(bell(), backend)], shots=300) for _ in range(3)]
    job = SamplerV2(mode=backend).run([named(backend, "abort")], shots=10)
    with pytest.raises(RuntimeJobFailureError, match=r"killed by signal 6 \(SIGABRT\)"):
        job.result()
    assert reader.job(job.job_id())["attempts"] == 1
    for other in others:  # submitted around it, untouched by it
        assert sum(other.result()[0].data.meas.get_counts().values()) == 300
    assert_still_serving(server, backend, workers)


def test_a_killed_web_worker_takes_its_job_process_with_it(server, backend):
    """A SIGKILLed gunicorn worker leaves no simulation running: its job process dies
    with it (PR_SET_PDEATHSIG), and the job is re-queued once its lease runs out."""
    reader = StoreReader(server.data_dir)
    job = SamplerV2(mode=backend).run([named(backend, "busy:orphan")], shots=10)
    pid = job_process(reader, job.job_id())
    worker = int(reader.job(job.job_id())["claimed_by"].split(":")[-2])
    os.kill(worker, signal.SIGKILL)
    wait_gone(pid, timeout=10)
    open_gate(server, "orphan")
    assert sum(job.result()[0].data.meas.get_counts().values()) == 10  # run again elsewhere
    assert reader.job(job.job_id())["attempts"] == 2


def test_job_processes_are_warm_and_reused(server, backend):
    """Consecutive jobs run in the same few job processes: nothing is re-imported."""
    import re

    reader = StoreReader(server.data_dir)
    pids, reused = set(), 0
    for _ in range(12):
        job = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=50)
        job.result()
        pids.add(job_process(reader, job.job_id()))
        for line in reader.log_lines(job.job_id()):
            if match := re.match(r"Running in job process \d+ .*, (\d+) task", line):
                reused += int(match.group(1)) > 0
    assert len(pids) < 12 and reused >= 12 - len(pids)
