"""Payload builders shared by tests: params exactly as the stock client encodes them."""

from __future__ import annotations

import json

from qiskit import QuantumCircuit
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit_ibm_runtime import RuntimeEncoder


def bell_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def sampler_params(circuit: QuantumCircuit | None = None, shots: int = 100,
                   options: dict | None = None) -> dict:
    """``params`` of a sampler job, encoded with the client's ``RuntimeEncoder``."""
    pub = SamplerPub.coerce(circuit or bell_circuit(), shots)
    params = {"pubs": [pub], "options": options or {}, "version": 2, "support_qiskit": True}
    return json.loads(json.dumps(params, cls=RuntimeEncoder))
