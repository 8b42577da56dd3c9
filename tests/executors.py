"""Real executors for runner and job-process tests: they run, fail, take time or crash.

They implement the executor interface for real; the results they return are built from
the pubs they receive (shots honoured), not canned answers. Most run without Aer;
``TrialExecutor`` is the real local executor plus circuits that misbehave on purpose.
"""

from __future__ import annotations

import time

import numpy as np
from qiskit.primitives import PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers import BitArray, DataBin

from qrs import joblog
from qrs.codec import coerce_pubs
from qrs.executors.base import BaseExecutor
from qrs.executors.local import LocalExecutor


class AllZerosExecutor(BaseExecutor):
    """Returns all-zero outcomes for every shot: what a circuit of identities measures."""

    name = "all-zeros"

    def execute_sampler(self, pubs, options, backend_name) -> PrimitiveResult:
        results = []
        for pub in coerce_pubs("sampler", pubs, options.get("default_shots", 1024)):
            bits = np.zeros((*pub.shape, pub.shots, 1), dtype=np.uint8)
            creg = pub.circuit.cregs[0]
            data = DataBin(**{creg.name: BitArray(bits, creg.size)}, shape=pub.shape)
            results.append(SamplerPubResult(data, metadata={"shots": pub.shots}))
            joblog.emit(f"zeros for {pub.shots} shots")
        return PrimitiveResult(results, metadata={"version": 2})

    def execute_estimator(self, pubs, options, backend_name) -> PrimitiveResult:
        raise NotImplementedError("this test executor only samples")


class FailingExecutor(AllZerosExecutor):
    name = "failing"

    def execute_sampler(self, pubs, options, backend_name):
        raise RuntimeError("simulator exploded on purpose")


class SlowExecutor(AllZerosExecutor):
    """Takes ``seconds`` per job, reaching a checkpoint every 10 ms (so cancels stop it)."""

    name = "slow"

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self.calls = 0

    def execute_sampler(self, pubs, options, backend_name):
        self.calls += 1
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            joblog.checkpoint()
            time.sleep(0.01)
        return super().execute_sampler(pubs, options, backend_name)


class GatedExecutor(AllZerosExecutor):
    """Holds each job until the test opens its gate: slow by construction, not by speed.

    A pub whose circuit is named ``gate:NAME`` waits until the file ``gates/NAME`` exists
    in the server's data directory (checkpointing every 10 ms, so a cancel stops it); other
    circuits run at once. Tests decide when a job ends, whatever the machine's speed.
    """

    name = "gated"

    def execute_sampler(self, pubs, options, backend_name):
        from pathlib import Path

        gates = Path(self.config.data_dir) / "gates"
        for pub in pubs:
            circuit = pub[0] if isinstance(pub, tuple) else pub.circuit
            if circuit.name.startswith("gate:"):
                gate = gates / circuit.name.removeprefix("gate:")
                joblog.emit(f"waiting for gate {gate.name}")
                while not gate.exists():
                    joblog.checkpoint()
                    time.sleep(0.01)
        return super().execute_sampler(pubs, options, backend_name)


class TrialExecutor(LocalExecutor):
    """The real CPU executor, plus circuits that misbehave on purpose (by their name).

    * ``busy:NAME`` keeps Aer busy (holding the GIL, as a long simulation does) until the
      file ``gates/NAME`` exists in the data directory, then samples the circuit;
    * ``abort`` calls ``os.abort()`` (SIGABRT), as a crashing native library would;
    * ``allocate:MB`` allocates and touches ``MB`` MiB at once;
    * ``grow:MB`` allocates and touches memory 50 MiB at a time up to ``MB`` MiB.

    Anything else runs exactly as on the local executor.
    """

    name = "trial"

    def execute_sampler(self, pubs, options, backend_name):
        import os
        from pathlib import Path

        for pub in pubs:
            circuit = pub[0] if isinstance(pub, tuple) else pub.circuit
            kind, _, arg = circuit.name.partition(":")
            if kind == "busy":
                gate = Path(self.config.data_dir) / "gates" / arg
                joblog.emit(f"busy until gate {arg} opens")
                while not gate.exists():
                    _aer_busy_work()
            elif kind == "abort":
                os.abort()
            elif kind == "allocate":
                np.ones(int(arg) * 2**20, dtype=np.uint8)
            elif kind == "grow":
                hoard = []
                for _ in range(int(arg) // 50):
                    hoard.append(np.ones(50 * 2**20, dtype=np.uint8))
                    joblog.emit(f"holding {len(hoard) * 50} MiB")
        return super().execute_sampler(pubs, options, backend_name)


def _aer_busy_work() -> None:
    """About a quarter of a second of one Aer run (one call: the GIL is held throughout)."""
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator

    circuit = QuantumCircuit(18)
    for _ in range(30):
        for qubit in range(18):
            circuit.rx(0.3, qubit)
        for qubit in range(17):
            circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    AerSimulator(method="statevector", max_parallel_threads=1).run(circuit, shots=1).result()
