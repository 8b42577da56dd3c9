"""Benchmark figures of job isolation (issue 13), run by ``bench.py --only long``.

The issue's long job: an 18-qubit GHZ, 4,000 noisy shots on fake_sherbrooke — minutes of
one Aer call — on gunicorn with 2 workers and default settings. While it runs, a client
polls the job's status (``GET /jobs/<id>?exclude_params=true``, as the stock client
does) every 50 ms, with ``QRS_STATUS_WAIT_MS=0`` so that no poll is held for the job's
end; the figure is the p99 latency of those polls. The job must complete with one
attempt: before job processes existed it never did (the frozen worker stopped renewing
its lease and was killed by gunicorn's heartbeat timeout).

The planner (issue 16) now runs this GHZ as a matrix-product state in seconds, so the
job runs twice: as planned, and with ``QRS_SIMULATION_METHOD=statevector``, the noisy
statevector trajectories that took minutes on main (``--quick``: planned only).
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from pathlib import Path
from typing import Any


def ghz(width: int) -> Any:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(1, width):
        circuit.cx(qubit - 1, qubit)
    circuit.measure_all()
    return circuit


def bench_long_job(tmp: Path, quick: bool) -> list[Any]:
    """The long job through gunicorn, as planned and (not ``quick``) as statevector."""
    methods = ("automatic",) if quick else ("automatic", "statevector")
    return [row for method in methods for row in _long_job(tmp, quick, method)]


def _long_job(tmp: Path, quick: bool, method: str) -> list[Any]:
    """One run of the long job; status-poll latency while it runs."""
    from benchmarks.bench import Row as row, fake_backend, isa, job_body, percentile, start_server

    name = "fake_sherbrooke"
    width, shots = (14, 2000) if quick else (18, 4000)
    print(f"- long job: {width}-qubit GHZ, {shots} noisy shots on {name}, {method}", flush=True)
    body = job_body(isa(ghz(width), fake_backend(name)), name, shots)
    server = start_server(tmp, f"long-{method}", 2, {"QRS_NOISE": "1", "QRS_STATUS_WAIT_MS": "0",
                                                     "QRS_SIMULATION_METHOD": method})
    latencies: list[float] = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("POST", "/api/v1/jobs", body=body,
                     headers={"Content-Type": "application/json"})
        job_id = json.loads(conn.getresponse().read())["id"]
        started, status = time.perf_counter(), "Queued"
        while status not in ("Completed", "Failed", "Cancelled"):
            sent = time.perf_counter()
            conn.request("GET", f"/api/v1/jobs/{job_id}?exclude_params=true")
            answer = conn.getresponse()
            status = json.loads(answer.read())["status"]
            latencies.append(time.perf_counter() - sent)
            time.sleep(0.05)
        took = time.perf_counter() - started
        conn.request("GET", f"/api/v1/jobs/{job_id}/metrics")
        attempts = json.loads(conn.getresponse().read()).get("attempts")
    finally:
        server.stop()
    p99 = percentile(latencies, 0.99) * 1000
    return [row(f"long job ({width}q GHZ, {shots} noisy shots, 2 workers, {method})",
                took, "s", "Completed, 1 attempt", status == "Completed" and attempts == 1,
                f"{status}, attempts {attempts}"),
            row("  status-poll p99 while it runs", p99, "ms", "≤ 100", p99 <= 100,
                f"median {statistics.median(latencies) * 1000:.0f} ms over "
                f"{len(latencies)} polls")]
