"""Noise-model figures for ``make bench`` (``--only delays,learning``).

7. delays    In-process ``LocalExecutor`` on fake_manila, 100 shots, median of 50 runs: a
             noisy Bell, the Bell with two idles (``delay``), and the same after the client's
             XY4 dynamical decoupling (31 delays). Delays cost Aer's relaxation pass plus a
             noise-model copy per run; ``qrs/executors/noise.py`` memoizes both.
8. learning  Stock ``NoiseLearnerV3`` (server-side ``noise-learner`` program) learning one
             cx layer with IBM's default options (32 randomizations × 128 shots, depths
             0-32): wall time from submission to result, and the shots it ran.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any, Callable


def _median_ms(run: Callable[[], Any], count: int) -> float:
    run()  # warm-up: simulator, cut-down model, memoized delay errors
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_delays(row: type, quick: bool) -> list[Any]:
    from qiskit import QuantumCircuit
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
    from qiskit_ibm_runtime.executor.dynamical_decoupling import generate_dd_pass_manager
    from qiskit_ibm_runtime.options_models import DynamicalDecouplingOptions

    from qrs.config import Config
    from qrs.executors.local import LocalExecutor
    from qrs.metadata import BackendMetadataProvider

    print("- delays and dynamical decoupling, in-process executor", flush=True)
    metadata = BackendMetadataProvider()
    executor = LocalExecutor()
    executor.setup(Config(data_dir="/tmp/qrs-bench-delays", aer_threads=1), metadata)
    backend = metadata.get_backend("fake_manila")
    manager = generate_preset_pass_manager(backend=backend, optimization_level=1,
                                           seed_transpiler=1234)
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    idle = QuantumCircuit(2)
    idle.h(0)
    idle.cx(0, 1)
    idle.delay(20_000, [0, 1], unit="dt")
    idle.cx(0, 1)
    idle.measure_all()
    idle = manager.run(idle)
    dd = generate_dd_pass_manager(backend, DynamicalDecouplingOptions(
        enable=True, sequence_type="XY4")).run(idle)
    count = 15 if quick else 50
    figures = {name: _median_ms(lambda c=circuit: executor.execute_sampler(
        [(c, None, 100)], {}, "fake_manila"), count)
        for name, circuit in (("bell", manager.run(bell)), ("idle", idle), ("dd", dd))}
    return [row("tiny noisy Bell, executor only, median", figures["bell"], "ms", "≤ 15",
                figures["bell"] <= 15),
            row("  … with 2 delays (relaxation on idles)", figures["idle"], "ms", "≤ 15",
                figures["idle"] <= 15),
            row("  … after XY4 DD (31 delays)", figures["dd"], "ms", "≤ 50", figures["dd"] <= 50,
                f"{figures['dd'] / figures['bell']:.1f} × the Bell")]


def bench_learning(row: type, start_server: Callable[..., Any], tmp: Path,
                   quick: bool) -> list[Any]:
    from qiskit import QuantumCircuit
    from qiskit_ibm_runtime import NoiseLearnerV3
    from samplomatic import Twirl

    from qrs.client import connect

    print("- noise learning of one cx layer (stock NoiseLearnerV3)", flush=True)
    options = {"num_randomizations": 8 if quick else 32, "shots_per_randomization": 128,
               "layer_pair_depths": [0, 1, 2, 4, 16, 32]}
    server = start_server(tmp, "learning", 1, {"QRS_NOISE": "1"})
    try:
        backend = connect(server.url, token="bench").backend("fake_manila")
        layer = QuantumCircuit(backend.num_qubits)
        with layer.box([Twirl()]):
            layer.cx(0, 1)
        started = time.perf_counter()
        job = NoiseLearnerV3(backend, options=options).run([layer[0]])
        job.result()
        wall = time.perf_counter() - started
        log = job.logs()
    finally:
        server.stop()
    found = re.search(r"(\d+) circuit\(s\) x (\d+) shots", log)
    shots = (f"{int(found[1]) * int(found[2]):,} shots in {found[1]} circuits" if found
             else "")
    return [row(f"learn one cx layer, {options['num_randomizations']} randomizations × 128 "
                "shots", wall, "s", "≤ 300", wall <= 300, shots)]
