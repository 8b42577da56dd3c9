"""The Dask executor spreads one heavy pub over the cluster; GPU tasks go to GPU workers.

Real Dask processes (a ``LocalCluster``, or ``dask scheduler`` and ``dask worker``
commands), a real server and the stock client. No GPU exists here: the worker started
with ``--resources GPU=1`` runs its GPU tasks through the GPU executor's opt-in CPU
fallback (``QRS_GPU_FALLBACK=cpu``) — only the GPU itself is missing, the routing is real.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from qiskit_ibm_runtime import SamplerV2

from .conftest import connect
from .support.payloads import assert_binomial, bell, ghz, isa
from .support.server import ROOT, ServerProcess, free_port


def test_one_heavy_pub_runs_as_tasks_on_every_worker(tmp_path):
    server = ServerProcess(tmp_path / "data", env={
        "QRS_EXECUTOR": "dask", "QRS_DASK_SCHEDULER": "local", "QRS_DASK_WORKERS": "2",
        "QRS_EXECUTOR_THREADS": "1", "QRS_AER_THREADS": "1", "QRS_SPLIT_MIN_SECONDS": "0",
        "QRS_SIMULATION_METHOD": "statevector"}).start(timeout=180)
    try:
        backend = connect(server).backend("fake_kolkata")
        circuit = isa(ghz(8, angle=0.4), backend)
        sampler = SamplerV2(mode=backend)
        sampler.options.simulator.seed_simulator = 99
        shots = 400
        job = sampler.run([(circuit, None, shots)])
        result = job.result()[0]
        logs = job.logs()
        done = re.findall(r"Pub 1 part 1 task \d/4 done on Dask worker (\S+)", logs)
        assert len(done) == 4, logs  # 2 workers × 1 thread, twice over: 4 shot chunks
        assert len(set(done)) == 2, logs  # one pub, both workers
        counts = result.data.meas.get_counts()
        assert sum(counts.values()) == shots
        assert counts.get("0" * 8, 0) + counts.get("1" * 8, 0) > 0.4 * shots, counts
        again = sampler.run([(circuit, None, shots)]).result()[0]
        assert (again.data.meas.array == result.data.meas.array).all()  # seeds per task
    finally:
        server.stop()


def _start(command: list[str], log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            start_new_session=True)


@pytest.fixture
def gpu_cluster(tmp_path):
    """``dask scheduler`` plus two ``dask worker`` s, one started with ``--resources GPU=1``."""
    from distributed import Client

    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker"]
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [_start([*dask, "--host", "127.0.0.1", "--port", str(port),
                         "--dashboard-address", ":0"], tmp_path / "scheduler.log")]
    processes.append(_start([*worker, address, "--nthreads", "1", "--name", "cpu",
                             "--no-dashboard"], tmp_path / "cpu.log"))
    processes.append(_start([*worker, address, "--nthreads", "1", "--name", "gpu",
                             "--resources", "GPU=1", "--no-dashboard"], tmp_path / "gpu.log"))
    try:
        with Client(address, timeout=60) as client:
            deadline = time.monotonic() + 120
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "dask workers did not join"
                time.sleep(0.2)
            names = {info["name"]: worker_address
                     for worker_address, info in client.scheduler_info()["workers"].items()}
        yield address, names
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_gpu_tasks_go_only_to_workers_with_a_gpu_resource(tmp_path, gpu_cluster):
    address, workers = gpu_cluster
    server = ServerProcess(tmp_path / "data", env={
        "QRS_EXECUTOR": "dask", "QRS_DASK_SCHEDULER": address, "QRS_GPU_FALLBACK": "cpu",
        "QRS_EXECUTOR_THREADS": "1", "QRS_AER_THREADS": "1"}).start(timeout=180)
    try:
        backend = connect(server).backend("fake_manila")
        shots = 2000
        job = SamplerV2(mode=backend).run([(isa(bell(), backend), None, shots)] * 3)
        result = job.result()
        logs = job.logs()
        assert "density_matrix on GPU" in logs, logs  # planned for the GPU worker
        ran_on = re.findall(r"Pub \d done on Dask worker (\S+)", logs)
        assert ran_on == [workers["gpu"]] * 3, (ran_on, workers)
        for pub in result:
            counts = pub.data.meas.get_counts()
            correlated = counts.get("00", 0) + counts.get("11", 0)
            assert correlated > 0.8 * shots, counts
            assert_binomial(counts.get("00", 0), correlated, 0.5)
    finally:
        server.stop()
