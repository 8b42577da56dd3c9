"""Circuits and payload builders shared by tests: params exactly as the stock client
encodes them."""

from __future__ import annotations

import json
import math
from typing import Any

from qiskit import QuantumCircuit
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
from qiskit_ibm_runtime import RuntimeEncoder

SIGMAS = 5  # tolerance in standard deviations: false alarms ~1e-6 per check


def bell(measure: bool = True) -> QuantumCircuit:
    """The Bell pair (|00> + |11>)/sqrt(2); ``measure=False`` for estimator pubs."""
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    if measure:
        qc.measure_all()
    return qc


def ghz(width: int, measure: bool = True, angle: float | None = None) -> QuantumCircuit:
    """The hello-world tutorial's GHZ: H then a CX chain; ``angle`` adds an rz on the
    middle qubit (then not Clifford: noisy shots become trajectories)."""
    qc = QuantumCircuit(width)
    qc.h(0)
    for qubit in range(width - 1):
        qc.cx(qubit, qubit + 1)
    if angle is not None:
        qc.rz(angle, width // 2)
    if measure:
        qc.measure_all()
    return qc


def entangled(width: int, layers: int | None = None, seed: int = 5) -> QuantumCircuit:
    """Random RY layers between CX bricks, measured: no simulation plan shortcuts it.

    Not Clifford (no stabilizer), and entangled across every cut up to 2^(width/2)
    (no cheap matrix-product state): its cost is a full state vector's.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(width)
    for layer in range(layers or width):
        for qubit in range(width):
            qc.ry(float(rng.uniform(0.3, 2.8)), qubit)
        for qubit in range(layer % 2, width - 1, 2):
            qc.cx(qubit, qubit + 1)
    qc.measure_all()
    return qc


#: Every transpile in the tests uses this seed: layout and routing are then the same on
#: every run of one qiskit release. Tests still assert on structure, never exact widths.
SEED_TRANSPILER = 1234


def isa(circuit: QuantumCircuit, backend, optimization_level: int = 1) -> QuantumCircuit:
    """``circuit`` transpiled for ``backend`` as a user would (the server takes ISA only)."""
    return generate_preset_pass_manager(backend=backend, optimization_level=optimization_level,
                                        seed_transpiler=SEED_TRANSPILER).run(circuit)


def assert_binomial(count: int, shots: int, p: float) -> None:
    """``count`` successes of ``shots`` trials is within ``SIGMAS`` sigmas of ``p``."""
    sigma = math.sqrt(shots * p * (1 - p)) or 1.0
    assert abs(count - shots * p) <= SIGMAS * sigma, (count, shots, p)


def assert_same_rate(count_a: int, shots_a: int, count_b: int, shots_b: int) -> None:
    """Two binomial samples agree: |p_a - p_b| within SIGMAS pooled standard errors."""
    pooled = (count_a + count_b) / (shots_a + shots_b)
    sigma = math.sqrt(pooled * (1 - pooled) * (1 / shots_a + 1 / shots_b)) or 1 / shots_a
    assert abs(count_a / shots_a - count_b / shots_b) <= SIGMAS * sigma, \
        (count_a, shots_a, count_b, shots_b)


def wire(obj: Any) -> Any:
    """What the client puts on the wire for ``obj`` (``RuntimeEncoder``), as parsed JSON."""
    return json.loads(json.dumps(obj, cls=RuntimeEncoder))


def sampler_params(circuit: QuantumCircuit | None = None, shots: int = 100,
                   options: dict | None = None, num_pubs: int = 1) -> dict:
    """``params`` of a sampler job (``num_pubs`` pubs of ``circuit``, a Bell pair unless
    given), encoded with the client's ``RuntimeEncoder`` and parsed back: the one params
    builder of the tests (``json.dumps`` it for the exact text the client sends)."""
    pub = SamplerPub.coerce(circuit or bell(), shots)
    params = {"pubs": [pub] * num_pubs, "options": options or {}, "version": 2,
              "support_qiskit": True}
    return wire(params)


def job_body(params: dict, program_id: str = "sampler", backend: str = "fake_manila",
             **fields: Any) -> str:
    """A ``POST /jobs`` body around ``params`` (other fields: tags, session_id, ...)."""
    return json.dumps({"program_id": program_id, "backend": backend, **fields,
                       "params": params})
