"""Tiny real executors for runner tests: they run, fail or take time without Aer.

They implement the executor interface for real; the results they return are built from
the pubs they receive (shots honoured), not canned answers.
"""

from __future__ import annotations

import time

import numpy as np
from qiskit.primitives import PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers import BitArray, DataBin

from qrs import joblog
from qrs.codec import coerce_pubs
from qrs.executors.base import BaseExecutor


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
