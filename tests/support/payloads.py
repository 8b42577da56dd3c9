"""Circuits and payload builders shared by tests: params exactly as the stock client
encodes them."""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import struct
import zlib
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, qpy
from qiskit.circuit import Parameter
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


def sweep_program(shots: int, backend):
    """Three ISA items: a 1-D RY sweep, a 2-D (RY, RZ) grid, a twirled (samplex) RY sweep.

    Returns the ``QuantumProgram``, the RY angles and the grid's values.
    """
    from qiskit_ibm_runtime import QuantumProgram
    from samplomatic import build
    from samplomatic.quantum_program import CircuitItem, SamplexItem
    from samplomatic.transpiler import generate_boxing_pass_manager

    theta, phi = Parameter("θ"), Parameter("φ")
    ry = QuantumCircuit(1, 1)
    ry.ry(theta, 0)
    ry.measure(0, 0)
    thetas = np.linspace(0, np.pi, 5)

    grid = QuantumCircuit(2)
    grid.ry(theta, 0)
    grid.rz(phi, 0)
    grid.cx(0, 1)
    grid.measure_all()
    grid_values = np.stack(np.meshgrid(np.linspace(0, np.pi, 2), np.linspace(0, 1, 3),
                                       indexing="ij"), axis=-1)  # shape (2, 3, 2): θ, φ

    ry, grid = isa(ry, backend), isa(grid, backend)
    boxed = generate_boxing_pass_manager(enable_gates=True, enable_measures=True).run(ry)
    template, samplex = build(boxed)
    program = QuantumProgram(shots=shots, items=[
        CircuitItem(ry, circuit_arguments=thetas[:, None]),
        CircuitItem(grid, circuit_arguments=grid_values),
        SamplexItem(template, samplex, samplex_arguments={"parameter_values": thetas[:, None]},
                    shape=(4, 5)),
    ])
    return program, thetas, grid_values


def program_params(program) -> dict:
    """The params dict exactly as ``Executor.run`` would send it."""
    from qiskit_ibm_runtime.options_models import ExecutorOptions
    from qiskit_ibm_runtime.quantum_program.params_converters import (
        QUANTUM_PROGRAM_PARAMS_CONVERTERS,
    )

    return QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(
        program, ExecutorOptions()).model_dump(mode="json")


def widen(raw: bytes, qubits: int | None = None, clbits: int | None = None,
          index: int = 0) -> bytes:
    """Rewrite the declared widths in the header of circuit ``index`` of a QPY file
    (version 12 or later; nothing else changes)."""
    from qiskit.qpy import formats

    data = bytearray(raw)
    if data[6] >= 16:  # a table of circuit offsets follows the file header
        offset, = struct.unpack_from("!Q", data, formats.FILE_HEADER_V10_SIZE + 1 + 8 * index)
    else:
        offset = formats.FILE_HEADER_V10_SIZE + 1
    fields = list(struct.unpack_from(formats.CIRCUIT_HEADER_V12_PACK, data, offset))
    names = formats.CIRCUIT_HEADER_V12._fields
    if qubits is not None:
        fields[names.index("num_qubits")] = qubits
    if clbits is not None:
        fields[names.index("num_clbits")] = clbits
    struct.pack_into(formats.CIRCUIT_HEADER_V12_PACK, data, offset, *fields)
    return bytes(data)


def deflate_zeros(nbytes: int, prefix: bytes = b"") -> bytes:
    """``prefix`` and ``nbytes`` zero bytes, zlib-compressed without holding them all."""
    deflater = zlib.compressobj(9)
    out = [deflater.compress(prefix)]
    zeros = bytes(min(nbytes, 2**24))
    for _ in range(nbytes // len(zeros) if zeros else 0):
        out.append(deflater.compress(zeros))
    out.append(deflater.compress(bytes(nbytes % len(zeros))) if zeros else b"")
    out.append(deflater.flush())
    return b"".join(out)


@functools.cache
def zlib_bomb(inflated_bytes: int) -> dict:
    """A valid ``.npy`` array of zeros of ``inflated_bytes`` bytes, zlib-compressed."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (inflated_bytes // 8,)})
    blob = deflate_zeros(inflated_bytes // 8 * 8, header.getvalue())
    return {"__type__": "ndarray", "__value__": base64.b64encode(blob).decode()}


# ---------------------------------------------------------------- raw API bodies
def circuit(qubits: int = 2, clbits: int | None = None) -> QuantumCircuit:
    """An entangling circuit in fake_manila's native gates (sx, cx)."""
    qc = QuantumCircuit(qubits, qubits if clbits is None else clbits)
    qc.sx(0)
    for q in range(1, qubits):
        qc.cx(0, q)
    qc.measure(range(min(qubits, qc.num_clbits)), range(min(qubits, qc.num_clbits)))
    return qc


def sampler_job(pubs, options=None, backend="fake_manila", **extra) -> dict:
    return {"program_id": "sampler", "backend": backend,
            "params": {"pubs": wire(pubs), "options": options or {}, "version": 2}, **extra}


def refused(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"errors", "trace"}
    message = body["errors"][0]["message"]
    for word in words:
        assert word in message, message
    return message


def qpy_bytes(qc: QuantumCircuit) -> bytes:
    stream = io.BytesIO()
    qpy.dump(qc, stream, version=17)  # what the 0.51 client sends
    return stream.getvalue()
