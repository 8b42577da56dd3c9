"""A program as IBM's documentation writes it, with only the account changed.

Run by tests/test_nginx.py in a fresh process whose HOME is empty and whose environment
has no QRS or qiskit variables: ``python -m tests.ibm_docs_program URL KEY``. The last
line it prints is a JSON summary the test checks.
"""

from __future__ import annotations

import json
import sys


def main(url: str, key: str) -> None:
    # --- IBM docs, "Set up your IBM Cloud account": save the account once ---------------
    from qiskit_ibm_runtime import QiskitRuntimeService

    QiskitRuntimeService.save_account(channel="ibm_quantum_platform", url=url, token=key,
                                      set_as_default=True)

    # --- IBM docs, "Hello world" / "Get started with primitives" -------------------------
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime import EstimatorV2 as Estimator
    from qiskit_ibm_runtime import SamplerV2 as Sampler

    service = QiskitRuntimeService()
    backend = service.least_busy(operational=True, simulator=False)
    print(f">>> least busy backend: {backend.name} ({backend.num_qubits} qubits)")

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    pm = generate_preset_pass_manager(backend=backend, optimization_level=1)
    isa_circuit = pm.run(qc)

    sampler = Sampler(mode=backend)
    job = sampler.run([isa_circuit])
    print(f">>> Job ID: {job.job_id()}")
    print(f">>> Job Status: {job.status()}")
    result = job.result()
    counts = result[0].data.meas.get_counts()
    print(f">>> Counts: {counts}")
    spans = result.metadata["execution"]["execution_spans"]
    print(f">>> Execution spans: {spans}")

    observable = SparsePauliOp("ZZ")
    unmeasured = QuantumCircuit(2)
    unmeasured.h(0)
    unmeasured.cx(0, 1)
    isa_unmeasured = pm.run(unmeasured)
    estimator = Estimator(mode=backend)
    estimator.options.default_shots = 4000
    pub_result = estimator.run(
        [(isa_unmeasured, observable.apply_layout(isa_unmeasured.layout))]).result()[0]
    print(f">>> Expectation value: {pub_result.data.evs} ± {pub_result.data.stds}")

    print(json.dumps({"backend": backend.name, "counts": counts, "instance":
                      service.active_instance(), "spans": len(spans),
                      "evs": float(pub_result.data.evs), "stds": float(pub_result.data.stds),
                      "evs_shape": list(pub_result.data.evs.shape)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
