"""CPU vs GPU executor time for wide circuits: ``python -m benchmarks.gpu_vs_cpu``.

Runs the same transpiled circuit (layers of random RY rotations and a CX ladder: no
stabilizer shortcut) through ``LocalExecutor`` and, where a GPU is usable,
``GPUExecutor`` — the executors' real code path, ideal statevector — and prints the
seconds each took. Without a GPU it prints why and times the CPU only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def circuit(width: int, layers: int, seed: int):
    from qiskit import QuantumCircuit

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(width)
    for _ in range(layers):
        for qubit in range(width):
            qc.ry(float(rng.uniform(0, np.pi)), qubit)
        for qubit in range(width - 1):
            qc.cx(qubit, qubit + 1)
    qc.measure_all()
    return qc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[26, 28, 30])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--backend", default="fake_sherbrooke")
    args = parser.parse_args()

    from qrs import _import_qiskit_in_this_thread

    _import_qiskit_in_this_thread()
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

    from qrs.circuits import active_qubits
    from qrs.config import Config
    from qrs.executors.base import ExecutorUnavailable
    from qrs.executors.gpu import GPUExecutor
    from qrs.executors.local import LocalExecutor
    from qrs.metadata import BackendMetadataProvider

    metadata = BackendMetadataProvider()
    backend = metadata.get_backend(args.backend)
    config = Config(noise=False, simulation_method="statevector", max_memory_mb=10**9,
                    gpu_memory_limit_mb=10**9, executor_threads=1)
    executors = {"cpu": LocalExecutor()}
    executors["cpu"].setup(config, metadata)
    gpu = GPUExecutor()
    try:
        gpu.setup(config, metadata)
        executors["gpu"] = gpu
    except ExecutorUnavailable as exc:
        print(f"GPU not timed: {exc}\n")
    pass_manager = generate_preset_pass_manager(backend=backend, optimization_level=1,
                                                seed_transpiler=1)
    print(f"{'qubits':>6} {'active':>6} {'executor':>8} {'seconds':>9}  device")
    for width in args.qubits:
        isa = pass_manager.run(circuit(width, args.layers, seed=width))
        for name, executor in executors.items():
            executor.simulator(args.backend)  # build outside the timing
            started = time.perf_counter()
            result = executor.execute_sampler([(isa, None, args.shots)], {}, args.backend)
            seconds = time.perf_counter() - started
            assert sum(result[0].data.meas.get_counts().values()) == args.shots
            print(f"{width:>6} {active_qubits(isa):>6} {name:>8} {seconds:>9.2f}  "
                  f"{executor.simulator_options()['device']}", flush=True)


if __name__ == "__main__":
    main()
