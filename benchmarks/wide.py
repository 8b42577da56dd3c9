"""Wide and heavy jobs (``make bench`` figure ``wide``): what the simulation planner buys.

1. A Bell pair transpiled to the 127-qubit fake_sherbrooke, then ``measure_all()`` (IBM's
   session guide), 4,000 shots, through a gunicorn server (1 worker, 1 runner thread):
   seconds from submission to result, after a warm-up job has built the device's noise
   model (the cold figure, noise model included, is in the detail column).
2. The hello-world 100-qubit GHZ, noisy, 1,000 shots, on the 127-qubit fake_washington,
   the same way (exact noise: matrix-product-state trajectories).
3. A 16-qubit noisy pub (bench.py's ``layered``: 3 layers of random RY and CX bricks; no
   stabilizer, and too wide for the density matrix), 8,192 shots, through
   ``DaskExecutor`` on a ``LocalCluster`` of 2 single-threaded workers ÷ the same on 1
   single-threaded worker, in this process; every worker builds its noise model and
   simulator before the clock starts (``warm``). The same pub on the ``LocalExecutor``
   with 1 and 2 Aer threads is in the detail column: it is why the local executor keeps
   its cores busy through Aer's threads, not a process pool.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from tests.support.payloads import ghz  # the tests' GHZ chain (bench.py adds the root)


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def _process_cpu() -> float:
    """CPU seconds (user + system, every thread) of the calling process."""
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def _cpu_seconds(executor: Any) -> float:
    """CPU seconds so far of where ``executor`` simulates: its Dask workers, or this process."""
    client = getattr(executor, "client", None)
    return sum(client.run(_process_cpu).values()) if client else _process_cpu()


def bench_wide_jobs(tmp: Path, quick: bool, row: Callable[..., Any],
                    start_server: Callable[..., Any], http: Callable[[str], Any],
                    job_body: Callable[..., bytes], isa: Callable[..., Any],
                    fake_backend: Callable[[str], Any]) -> list[Any]:
    """Figures 1 and 2, through one server (helpers are bench.py's)."""
    from qiskit import QuantumCircuit

    server = start_server(tmp, "wide", 1, {"QRS_NOISE": "1", "QRS_EXECUTOR_THREADS": "1"})
    rows = []
    try:
        client = http(server.url)
        sherbrooke = fake_backend("fake_sherbrooke")
        pair = QuantumCircuit(2)
        pair.h(0)
        pair.cx(0, 1)
        measured = isa(pair, sherbrooke)
        measured.measure_all()
        body = job_body(measured, "fake_sherbrooke", 4000)
        print("- 127-qubit measured Bell (fake_sherbrooke)", flush=True)
        cold_state, cold = client.run_job(body)
        state, warm = client.run_job(body)
        rows.append(row("127-qubit measured Bell, 4,000 shots", warm, "s", "seconds",
                        state == "Completed" and warm < 10,
                        f"{state}; first job {cold:.1f} s ({cold_state}) incl. the noise model"))
        washington = fake_backend("fake_washington")
        client.run_job(job_body(isa(ghz(2), washington), "fake_washington", 10))  # warm-up
        shots = 200 if quick else 1000
        print(f"- 100-qubit noisy GHZ, {shots} shots (fake_washington)", flush=True)
        state, seconds = client.run_job(job_body(isa(ghz(100), washington),
                                                 "fake_washington", shots))
        rows.append(row(f"100-qubit noisy GHZ, {shots} shots", seconds, "s", "≤ 60",
                        state == "Completed" and seconds <= 60, state))
    finally:
        server.stop()
    return rows


def _executor(kind: str, workers: int = 1, threads: int = 1) -> Any:
    from qrs.config import Config
    from qrs.executors.dask import DaskExecutor
    from qrs.executors.local import LocalExecutor
    from qrs.metadata import BackendMetadataProvider

    config = Config(executor=kind, dask_workers=workers, aer_threads=threads,
                    executor_threads=1)
    executor = DaskExecutor() if kind == "dask" else LocalExecutor()
    executor.setup(config, BackendMetadataProvider())
    return executor


def bench_split(quick: bool, row: Callable[..., Any], isa: Callable[..., Any],
                fake_backend: Callable[[str], Any], layered: Callable[..., Any]) -> list[Any]:
    """Figure 3: one heavy pub on 2 Dask workers ÷ on 1."""
    from qrs import _import_qiskit_in_this_thread

    _import_qiskit_in_this_thread()
    backend = fake_backend("fake_kolkata")
    width, shots = (12, 2048) if quick else (16, 8192)
    pub = [(isa(layered(width, 3), backend), None, shots)]
    warm = [(isa(ghz(2), backend), None, 10)]
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for label, kind, workers, threads in (("dask×1", "dask", 1, 1), ("dask×2", "dask", 2, 1),
                                          ("local 1 thread", "local", 1, 1),
                                          ("local 2 threads", "local", 1, 2)):
        print(f"- {width}-qubit noisy pub, {shots} shots: {label}", flush=True)
        executor = _executor(kind, workers, threads)
        try:
            if kind == "dask":
                executor.warm("fake_kolkata")
            executor.execute_sampler(warm, {}, "fake_kolkata")
            before = _cpu_seconds(executor)
            times[label], result = _timed(lambda: executor.execute_sampler(pub, {},
                                                                           "fake_kolkata"))
            cpu[label] = _cpu_seconds(executor) - before
            assert result[0].data.meas.num_shots == shots
        finally:
            executor.close()
    ratio = times["dask×2"] / times["dask×1"]
    return [row(f"{width}-qubit noisy pub, {shots} shots: 2 Dask workers ÷ 1", ratio, "×",
                "≤ 0.6", ratio <= 0.6,
                f"2 workers {times['dask×2']:.1f} s ({cpu['dask×2']:.0f} CPU-s), 1 worker "
                f"{times['dask×1']:.1f} s ({cpu['dask×1']:.0f} CPU-s); local executor 1 Aer "
                f"thread {times['local 1 thread']:.1f} s ({cpu['local 1 thread']:.0f} CPU-s), "
                f"2 threads {times['local 2 threads']:.1f} s "
                f"({cpu['local 2 threads']:.0f} CPU-s)")]
