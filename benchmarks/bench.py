"""QRS benchmarks: ``make bench`` (or ``qrs bench``) prints one table, figure beside target.

Figures (issue "Performance"), each measured in this one run against real server
processes started here (``qrs/devserver.py``), on whatever machine runs it:

1. heavy   A wide circuit through the server ÷ the same ISA circuit run in this process
           on Aer (``AerSimulator.from_backend(...).run(..., memory=True)``, the same
           simulator the executor builds), noise off and on. The server is gunicorn with
           one worker and one runner thread, so Aer gets every core in both cases. A
           warm-up job first builds the server's simulator, as the reference's is built
           before its clock starts; each side is the best of 3 interleaved runs (1 with
           --quick), as other load on the machine can only add time. Noisy trajectories
           of 22 qubits × 4,096 shots take hours on two cores, so the noisy case is
           narrower (Aer picks density_matrix for it, in and out of the server).
2. tiny    Bell on fake_manila, noise on, 100 shots, raw HTTP (keep-alive), 4 gunicorn
           workers: 16 concurrent submitters (in 4 client processes) polling every 10 ms,
           and 1 submitter. Latency = POST sent → result body received. Server CPU per
           job = CPU time of the gunicorn master and workers (``/proc``) ÷ jobs.
3. client  Stock ``SamplerV2(mode=backend).run([bell]).result()`` (outside a session),
           median wall time, and the same minus the client's own sleeps between polls
           (counted by wrapping the ``time`` module the client's job class uses).
4. cache   Run time of the 2nd noisy job ÷ the 1st on a fresh server, on a 127-qubit
           backend (the 1st builds the noise model).
5. list    ``GET /jobs?limit=50`` median with 100,000 stored jobs ÷ with 100 (rows
           inserted straight into a temporary store, served by an in-process app).
6. long    The long job of issue 13 through gunicorn (``benchmarks/isolation.py``):
           it completes once, and status polls stay fast while it runs.
7. wide    The 127-qubit measured Bell and the 100-qubit noisy GHZ through a server,
           and one heavy 16-qubit pub split over 2 Dask workers ÷ over 1
           (``benchmarks/wide.py`` says exactly what each measures).

7-8. delays, learning: see ``benchmarks/noise.py``.

``--quick`` shrinks every count (about a minute less); ``--only tiny,list`` picks figures.
Nothing here asserts: the table is the output.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qrs.devserver import ServerProcess  # noqa: E402

warnings.simplefilter("ignore")


# ------------------------------------------------------------------------ circuits
def bell():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def layered(num_qubits: int, depth: int, seed: int = 7):
    """``depth`` layers of random RY rotations and a brick of CX gates, measured."""
    import numpy as np
    from qiskit import QuantumCircuit

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(num_qubits)
    for layer in range(depth):
        for q in range(num_qubits):
            qc.ry(float(rng.uniform(0, np.pi)), q)
        for q in range(layer % 2, num_qubits - 1, 2):
            qc.cx(q, q + 1)
    qc.measure_all()
    return qc


def fake_backend(name: str):
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    return FakeProviderForBackendV2().backend(name)


def isa(circuit, backend):
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

    return generate_preset_pass_manager(backend=backend, optimization_level=1,
                                        seed_transpiler=11).run(circuit)


def job_body(circuit, backend: str, shots: int) -> bytes:
    """A ``POST /jobs`` body as the stock client encodes it."""
    from qiskit_ibm_runtime import RuntimeEncoder

    params = {"pubs": [[circuit, None, shots]], "options": {}, "version": 2,
              "support_qiskit": True}
    return json.dumps({"program_id": "sampler", "backend": backend, "params": params},
                      cls=RuntimeEncoder).encode()


# --------------------------------------------------------------------- raw HTTP
class Http:
    """One keep-alive connection; just enough HTTP to submit and follow jobs cheaply."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
        self.last_result = b""

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                answer = self.conn.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed an idle keep-alive: reconnect once
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def run_job(self, body: bytes, poll_s: float = 0.01,
                timeout: float = 900.0) -> tuple[str, float]:
        """Submit, poll until final, fetch the result: (final status, seconds)."""
        start = time.perf_counter()
        status, data = self.call("POST", "/jobs", body)
        if status != 200:
            return f"HTTP {status}", time.perf_counter() - start
        job_id = json.loads(data)["id"]
        while True:
            status, data = self.call("GET", f"/jobs/{job_id}?exclude_params=true")
            state = json.loads(data).get("status") if status == 200 else f"HTTP {status}"
            if state in ("Completed", "Failed", "Cancelled") or status != 200:
                break
            if time.perf_counter() - start > timeout:
                return "timed out", time.perf_counter() - start
            time.sleep(poll_s)
        if state == "Completed":
            self.last_result = self.call("GET", f"/jobs/{job_id}/results")[1]
        return state, time.perf_counter() - start


def _submitter(url: str, body: bytes, count: int, out: list) -> None:
    http_ = Http(url)
    for _ in range(count):
        out.append(http_.run_job(body))


def _client_process(args: tuple[str, bytes, int, int]) -> list[tuple[str, float]]:
    """One client process running ``threads`` submitters (keeps the client off one GIL)."""
    url, body, threads, per_thread = args
    results: list[tuple[str, float]] = []
    workers = [threading.Thread(target=_submitter, args=(url, body, per_thread, results))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def _proc_stat(pid: int | str) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (state first), or ``None`` once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of a gunicorn master and every live process below it (its
    workers and their job processes), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    pids, frontier = [master_pid], [master_pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        pids += children
        frontier += children
    ticks = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``: the element at rank round(q·(n-1))."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# ----------------------------------------------------------------------- figures
@dataclass
class Row:
    figure: str
    value: float | None
    unit: str
    target: str
    ok: bool | None
    note: str = ""


def start_server(tmp: Path, name: str, workers: int, env: dict[str, str]) -> ServerProcess:
    base = {"QRS_LOG_LEVEL": "WARNING", "QRS_MAX_QUEUE_PER_USER": "100000"}
    print(f"  starting {name} server ({workers} worker(s), {env}) ...", flush=True)
    return ServerProcess(tmp / name / "data", env={**base, **env}, gunicorn=True,
                         workers=workers).start(timeout=300)


def _shots(result_text: bytes) -> int:
    """Shots in a stored sampler result (proof the server did the whole job)."""
    from qrs.codec import decode_result

    try:
        return decode_result(result_text.decode())[0].data.meas.num_shots
    except Exception:
        return 0


def bench_heavy(tmp: Path, quick: bool) -> list[Row]:
    from qiskit_aer import AerSimulator

    backend = fake_backend("fake_kolkata")
    rows = []
    repeats = 1 if quick else 3  # best of: other load on the machine only adds time
    cases = [(False, 20 if quick else 22, 20, 4096), (True, 8 if quick else 10, 20, 4096)]
    for noise, qubits, depth, shots in cases:
        label = f"heavy {qubits}q depth {depth} {shots} shots, noise {'on' if noise else 'off'}"
        print(f"- {label}", flush=True)
        circuit = isa(layered(qubits, depth), backend)
        # The executor's simulator options (qrs/executors/local.py), so only the path differs.
        options = {"method": "automatic", "device": "CPU",
                   "max_parallel_threads": len(os.sched_getaffinity(0))}
        if not noise:
            options["noise_model"] = None
        sim = AerSimulator.from_backend(backend, **options)
        sim.run(isa(bell(), backend), shots=100, memory=True).result()  # warm-up
        server = start_server(tmp, f"heavy-noise{int(noise)}", 1,
                              {"QRS_NOISE": str(int(noise)), "QRS_EXECUTOR_THREADS": "1"})
        local, runs = float("inf"), []
        try:
            http_ = Http(server.url)
            http_.run_job(job_body(isa(bell(), backend), "fake_kolkata", 100))  # warm-up
            body = job_body(circuit, "fake_kolkata", shots)
            for _ in range(repeats):  # interleaved, so changing load hits both sides alike
                start = time.perf_counter()
                sim.run(circuit, shots=shots, memory=True).result()
                local = min(local, time.perf_counter() - start)
                runs.append(http_.run_job(body))
        finally:
            server.stop()
        returned = _shots(http_.last_result)
        remote = min(seconds for _, seconds in runs)
        state = ", ".join(sorted({state for state, _ in runs}))
        ratio = remote / local
        rows.append(Row(f"{label}: server ÷ in-process Aer", ratio, "×", "≤ 1.05",
                        ratio <= 1.05 and state == "Completed" and returned == shots,
                        f"best of {repeats}: server {remote:.2f} s, in-process {local:.2f} s, "
                        f"jobs {state}, {returned} shots returned"))
    return rows


def bench_tiny(tmp: Path, quick: bool) -> tuple[list[Row], ServerProcess]:
    backend = fake_backend("fake_manila")
    body = job_body(isa(bell(), backend), "fake_manila", 100)
    server = start_server(tmp, "tiny", 4, {"QRS_NOISE": "1"})
    rows = []
    # Warm-up: every worker builds its fake_manila simulator before the clock starts.
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_client_process, [(server.url, body, 4, 3)] * 4)

        total = 320 if quick else 1024  # a multiple of the 16 submitters
        print(f"- tiny jobs: {total} with 16 submitters", flush=True)
        cpu0, wall0 = server_cpu_seconds(server.proc.pid), time.perf_counter()
        results = [r for part in pool.map(_client_process,
                                          [(server.url, body, 4, total // 16)] * 4)
                   for r in part]
        wall = time.perf_counter() - wall0
        cpu = server_cpu_seconds(server.proc.pid) - cpu0
    latencies = [seconds for _, seconds in results]
    failed = sum(1 for state, _ in results if state != "Completed")
    rate = len(results) / wall
    rows.append(Row("tiny Bell jobs/s, 16 submitters, 4 workers", rate, "jobs/s", "≥ 250",
                    rate >= 250, f"{len(results)} jobs in {wall:.1f} s"))
    p95 = percentile(latencies, 0.95) * 1000
    rows.append(Row("tiny latency p95, 16 submitters", p95, "ms", "≤ 150", p95 <= 150,
                    f"p50 {statistics.median(latencies) * 1000:.0f} ms"))
    rows.append(Row("tiny jobs failed, 16 submitters", failed, "jobs", "0", failed == 0))
    per_job = cpu / len(results) * 1000
    rows.append(Row("server CPU per tiny job", per_job, "ms", "≤ 4", per_job <= 4,
                    f"{cpu:.1f} CPU-s for {len(results)} jobs"))

    single = 50 if quick else 200
    print(f"- tiny jobs: {single} with 1 submitter", flush=True)
    out: list = []
    _submitter(server.url, body, single, out)
    p50 = statistics.median(s for _, s in out) * 1000
    rows.append(Row("tiny latency p50, 1 submitter", p50, "ms", "≤ 15", p50 <= 15,
                    f"p95 {percentile([s for _, s in out], 0.95) * 1000:.0f} ms, "
                    f"{sum(1 for st, _ in out if st != 'Completed')} failed"))
    return rows, server


class _SleepCounter:
    """Stands in for the ``time`` module inside the client's job class; sums its sleeps."""

    def __init__(self) -> None:
        self.slept = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        time.sleep(seconds)


def bench_client(server: ServerProcess, quick: bool) -> list[Row]:
    from qiskit_ibm_runtime import SamplerV2, runtime_job_v2

    from qrs.client import connect

    print("- stock client end to end", flush=True)
    service = connect(server.url, token="bench")
    backend = service.backend("fake_manila")
    circuit = isa(bell(), backend)
    SamplerV2(mode=backend).run([circuit], shots=100).result()  # warm-up (client caches)
    counter = _SleepCounter()
    runtime_job_v2.time = counter
    walls, net = [], []
    try:
        for _ in range(8 if quick else 20):
            counter.slept = 0.0
            start = time.perf_counter()
            SamplerV2(mode=backend).run([circuit], shots=100).result()
            walls.append(time.perf_counter() - start)
            net.append(walls[-1] - counter.slept)
    finally:
        runtime_job_v2.time = time
    median, median_net = statistics.median(walls) * 1000, statistics.median(net) * 1000
    return [Row("stock client Bell end to end, median", median, "ms", "≤ 100", median <= 100),
            Row("  … minus the client's poll sleeps", median_net, "ms", "≤ 50",
                median_net <= 50)]


def bench_cache(tmp: Path, quick: bool) -> list[Row]:
    name = "fake_sherbrooke"
    print(f"- noise-model cache on {name}", flush=True)
    backend = fake_backend(name)
    body = job_body(isa(bell(), backend), name, 100)
    server = start_server(tmp, "cache", 1, {"QRS_NOISE": "1", "QRS_EXECUTOR_THREADS": "1"})
    try:
        http_ = Http(server.url)
        times = []
        deadline = time.monotonic() + 600
        for _ in range(2):
            status, data = http_.call("POST", "/jobs", body)
            if status != 200:
                raise RuntimeError(f"POST /jobs answered {status}: {data[:500]!r}\n"
                                   f"{server.log()}")
            job_id = json.loads(data)["id"]
            while True:
                _, data = http_.call("GET", f"/jobs/{job_id}/metrics")
                stamps = json.loads(data)["timestamps"]
                if stamps["finished"]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job {job_id} did not finish:\n{server.log()}")
                time.sleep(0.01)
            _, data = http_.call("GET", f"/jobs/{job_id}?exclude_params=true")
            times.append(json.loads(data)["usage"]["seconds"])
    finally:
        server.stop()
    ratio = times[1] / times[0] if times[0] else None
    return [Row(f"2nd ÷ 1st noisy job run time ({backend.num_qubits}-qubit {name})", ratio,
                "×", "≤ 0.1", ratio is not None and ratio <= 0.1,
                f"1st {times[0]:.3f} s, 2nd {times[1]:.3f} s")]


def _fill_store(data_dir: Path, count: int) -> None:
    """``count`` finished jobs straight into the store (``Store.insert_finished_jobs``)."""
    from qrs.states import JobStatus
    from qrs.store import Job, Store

    now = time.time() - count
    Store(data_dir).insert_finished_jobs(
        Job(id=f"bench{i:015d}", user_id=f"user{i % 7}", program_id="sampler",
            backend="fake_manila", session_id=None, status=JobStatus.COMPLETED, reason=None,
            reason_code=None, created=now + i, running_at=now + i + 0.1,
            finished_at=now + i + 0.2, tags=["bench"], log_level=None, private=False,
            max_execution_time=None, num_pubs=1, num_circuits=1, claimed_by=None,
            heartbeat=None, attempts=1, usage_seconds=0.1) for i in range(count))


def _list_time(data_dir: Path, requests: int) -> float:
    from qrs import create_app
    from qrs.config import Config

    app = create_app(Config(data_dir=str(data_dir), executor_threads=1))
    client = app.test_client()
    client.get("/jobs?limit=50")
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get("/jobs?limit=50")
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200 and len(answer.get_json()["jobs"]) == 50
    app.extensions["qrs"].runner.stop()
    return statistics.median(times)


def bench_list(tmp: Path, quick: bool) -> list[Row]:
    print("- GET /jobs?limit=50 with 100 and 100,000 stored jobs", flush=True)
    small, large = tmp / "list-small", tmp / "list-large"
    _fill_store(small, 100)
    _fill_store(large, 100_000)
    requests = 30 if quick else 100
    t_small, t_large = _list_time(small, requests), _list_time(large, requests)
    ratio = t_large / t_small
    return [Row("GET /jobs?limit=50: 100,000 jobs ÷ 100 jobs", ratio, "×", "≤ 2", ratio <= 2,
                f"{t_large * 1000:.1f} ms vs {t_small * 1000:.1f} ms (median)")]


# -------------------------------------------------------------------------- table
def print_table(rows: list[Row], elapsed: float) -> None:
    head = ("figure", "measured", "target", "met", "detail")
    lines = [(r.figure, "—" if r.value is None else f"{r.value:,.2f} {r.unit}", r.target,
              {True: "yes", False: "NO", None: "?"}[r.ok], r.note) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    print()
    print(fmt.format(*head))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(fmt.format(*line))
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"benchmark took {elapsed:.0f} s")


FIGURES = ("heavy", "tiny", "client", "cache", "list", "long", "delays", "learning", "wide")


def bench_wide(tmp: Path, quick: bool) -> list[Row]:
    from benchmarks.wide import bench_split, bench_wide_jobs

    return (bench_wide_jobs(tmp, quick, Row, start_server, Http, job_body, isa, fake_backend)
            + bench_split(quick, Row, isa, fake_backend, layered))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs, narrower circuits")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated subset of {','.join(FIGURES)}")
    args = parser.parse_args(argv)
    chosen = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(chosen) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s) {sorted(unknown)}; choose from {FIGURES}")
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="qrs-bench-") as folder:
        tmp = Path(folder)
        if "heavy" in chosen:
            rows += bench_heavy(tmp, args.quick)
        if "cache" in chosen:
            rows += bench_cache(tmp, args.quick)
        if "tiny" in chosen or "client" in chosen:
            tiny_server = None
            try:
                if "tiny" in chosen:
                    tiny_rows, tiny_server = bench_tiny(tmp, args.quick)
                    rows += tiny_rows
                else:
                    tiny_server = start_server(tmp, "tiny", 4, {"QRS_NOISE": "1"})
                if "client" in chosen:
                    rows += bench_client(tiny_server, args.quick)
            finally:
                if tiny_server is not None:
                    tiny_server.stop()
        if "list" in chosen:
            rows += bench_list(tmp, args.quick)
        if "long" in chosen:
            from benchmarks.isolation import bench_long_job

            rows += bench_long_job(tmp, args.quick)
        if "delays" in chosen or "learning" in chosen:
            from benchmarks.noise import bench_delays, bench_learning

            if "delays" in chosen:
                rows += bench_delays(Row, args.quick)
            if "learning" in chosen:
                rows += bench_learning(Row, start_server, tmp, args.quick)
        if "wide" in chosen:
            rows += bench_wide(tmp, args.quick)
    print_table(rows, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
