"""Error mitigation on QRS, legacy vs client-side: ``make bench-mitigation``.

The issue's table, measured again: the stock client against a real noisy server process
(``qrs/devserver.py``), backend ``fake_manila``, a Bell pair followed by five identity
pairs of cx (ideal <ZZ> = 1.0), precision 0.01. Each row runs the legacy ``EstimatorV2``
(program ``estimator``, mitigated on the server) and the client-side
``executor_estimator.Estimator`` (an ``executor`` program, mitigated on the client) with
the same options, and prints evs ± stds and the wall time of each job. ``--precision``
and ``--rows`` change the work; nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qrs.devserver import ServerProcess  # noqa: E402

warnings.simplefilter("ignore")

ROWS = {
    "resilience_level = 0": {"resilience_level": 0},
    "unset": {},
    "resilience_level = 1": {"resilience_level": 1},
    "resilience_level = 2": {"resilience_level": 2},
    "resilience.zne_mitigation = True": {"resilience": {"zne_mitigation": True}},
    "pec_mitigation = True (learned)": {"resilience": {"pec_mitigation": True}},
}
#: The client-side Estimator needs a learned layer_noise_model for PEC: not in its column.
LEGACY_ONLY = {"pec_mitigation = True (learned)"}


def issue_circuit(backend):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    for _ in range(5):  # barriers keep the transpiler from cancelling the identity pairs
        circuit.barrier()
        circuit.cx(0, 1)
        circuit.barrier()
        circuit.cx(0, 1)
    circuit = generate_preset_pass_manager(backend=backend, optimization_level=1,
                                           seed_transpiler=1234).run(circuit)
    return circuit, SparsePauliOp("ZZ").apply_layout(circuit.layout)


def run(primitive, backend, options: dict, pubs: list, precision: float) -> str:
    """``evs ± stds (seconds)`` of one job, with its extra ZNE fields noted."""
    start = time.monotonic()
    pub_result = primitive(mode=backend, options=options).run(pubs, precision=precision) \
        .result()[0]
    seconds = time.monotonic() - start
    zne = " +ZNE fields" if hasattr(pub_result.data, "evs_extrapolated") else ""
    return (f"{float(pub_result.data.evs):.3f} ± {float(pub_result.data.stds):.3f}"
            f"{zne} ({seconds:.1f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.01)
    parser.add_argument("--rows", default=",".join(ROWS),
                        help="comma-separated row names (default: all)")
    args = parser.parse_args()

    from qiskit_ibm_runtime import EstimatorV2
    from qiskit_ibm_runtime.executor_estimator import Estimator

    from qrs.client import connect

    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            backend = connect(server.url, token="bench").backend("fake_manila")
            pubs = [issue_circuit(backend)]
            print(f"fake_manila, Bell + 5 identity cx pairs, ideal <ZZ> = 1.0, "
                  f"precision {args.precision}\n")
            print(f"| {'options':34} | {'legacy EstimatorV2 on QRS':32} | "
                  f"{'executor_estimator.Estimator on QRS':36} |")
            print(f"|{'-' * 36}|{'-' * 34}|{'-' * 38}|")
            for name in args.rows.split(","):
                options = ROWS[name]
                legacy = run(EstimatorV2, backend, options, pubs, args.precision)
                client = ("—" if name in LEGACY_ONLY else
                          run(Estimator, backend, options, pubs, args.precision))
                print(f"| {name:34} | {legacy:32} | {client:36} |", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
