"""Submission-time validation of a job's params: one pure function.

``validate_submission`` takes the params text, the program, what it needs to know of the
backend and the limits — plain, picklable values — and returns a small ``Summary`` or
raises a typed ``QRSError``. It touches no store, no Flask and no global state, so it
can run in the web process or, as by default, in a memory-limited child process
(``qrs.validator_process``), where a payload that still manages to allocate too much
kills only that child.

The checks run cheapest first: the payload guards on the plain JSON (sizes, headers,
allowed types; nothing is decoded), then decoding with the restricted decoder or the
executor program's own models, then the pub and program limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import schemas
from .codec import PubLimits, check_instructions, circuit_width, decode_params, validate_pubs
from .errors import InvalidInput, PayloadTooLarge
from .noise_learning import NOISE_LEARNER_PROGRAM, check_request, decode_request
from .payload_guard import PayloadLimits, check_params
from .program_guard import check_program_params
from .quantum_program import EXECUTOR_PROGRAM, check_program, decode_program


@dataclass(frozen=True)
class BackendFacts:
    """What validation needs to know about the target backend."""

    name: str
    num_qubits: int
    max_shots: int | None
    operation_names: frozenset[str]

    @property
    def target(self) -> BackendFacts:
        """Checks written for a ``BackendV2`` read ``backend.target.operation_names``."""
        return self


@dataclass(frozen=True)
class SubmissionLimits:
    """The configured limits a submission is checked against (from ``Config``)."""

    pubs: PubLimits
    max_decoded_bytes: int
    max_clbits: int


@dataclass(frozen=True)
class Summary:
    """What the store records about an accepted job's params."""

    num_pubs: int
    num_circuits: int
    width: int  # qubits the widest circuit uses (0: not batchable)
    max_execution_time: int | None  # from the options, if set


def decoded_estimate(params_text: str, program_id: str, backend: BackendFacts,
                     limits: SubmissionLimits) -> int:
    """Bytes the payload checks expect decoding to take (inflated payloads and declared
    bits), raising their refusals; cheap, nothing is decoded. ``validator_process``
    uses it to send only big jobs to the memory-limited child."""
    try:
        params = json.loads(params_text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"params is not valid JSON: {exc}") from None
    payload = PayloadLimits(limits.max_decoded_bytes, backend.num_qubits, limits.max_clbits)
    return _guard(program_id, params)(params, payload) + len(params_text)


def _guard(program_id: str, params: object):
    """The payload check for this program: pydantic-model payloads (``executor``,
    NoiseLearnerV3) or ``RuntimeEncoder`` ones (sampler, estimator, legacy NoiseLearner)."""
    modelled = program_id == EXECUTOR_PROGRAM or (
        program_id == NOISE_LEARNER_PROGRAM and isinstance(params, dict)
        and "schema_version" in params)
    return check_program_params if modelled else check_params


def validate_submission(params_text: str, program_id: str, backend: BackendFacts,
                        limits: SubmissionLimits, guarded: bool = False) -> Summary:
    """Check a job's params completely; raise ``InvalidInput``/``LimitExceeded``/
    ``PayloadTooLarge`` naming what is wrong. ``guarded``: ``decoded_estimate`` already
    ran the payload checks on this text."""
    try:
        params = json.loads(params_text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"params is not valid JSON: {exc}") from None
    payload = PayloadLimits(limits.max_decoded_bytes, backend.num_qubits, limits.max_clbits)
    try:
        if not guarded:
            _guard(program_id, params)(params, payload)
        if program_id == EXECUTOR_PROGRAM:
            program = decode_program(params)
            circuits = check_program(program, backend.num_qubits, backend.operation_names,
                                     limits.pubs)
            return Summary(len(program.program.items), circuits, 0, None)
        if program_id == NOISE_LEARNER_PROGRAM:
            learning = decode_request(params, backend)
            check_request(learning, backend, limits.pubs)
            return Summary(len(learning.layers), len(learning.layers), 0, None)
        decoded = decode_params(params_text, program_id)
        schemas.load(schemas.PrimitiveOptions, decoded.options, "params.options")
        circuits = validate_pubs(program_id, decoded.pubs, decoded.options, backend.num_qubits,
                                 limits.pubs, backend_max_shots=backend.max_shots)
        check_instructions(decoded.pubs, backend.operation_names, backend.name)
        max_time = decoded.options.get("max_execution_time")
        return Summary(len(decoded.pubs), circuits, circuit_width(decoded.pubs),
                       int(max_time) if max_time else None)
    except MemoryError:
        raise PayloadTooLarge("Checking this job's params needed more memory than this "
                              "server allows for it (QRS_VALIDATION_MEMORY_MB); send a "
                              "smaller job.") from None


def warm_up() -> None:
    """Validate one tiny job of each program, so every module and library the checks use
    is loaded: a validation child does this before capping its address space (mapping a
    library afterwards could fail for want of room), and its fork server once for all."""
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit_ibm_runtime import QuantumProgram, RuntimeEncoder
    from qiskit_ibm_runtime.options_models import ExecutorOptions
    from qiskit_ibm_runtime.quantum_program.params_converters import (
        QUANTUM_PROGRAM_PARAMS_CONVERTERS,
    )
    from samplomatic.quantum_program import CircuitItem

    circuit = QuantumCircuit(1, 1)
    circuit.sx(0)
    circuit.measure(0, 0)
    backend = BackendFacts("warm-up", 1, None, frozenset({"sx", "measure"}))
    limits = SubmissionLimits(PubLimits(1, 100, 100, 1, 1, 2**20), 2**20, 1)
    sampler = json.dumps({"pubs": [(circuit, np.zeros(0), 10)], "options": {}},
                         cls=RuntimeEncoder)
    validate_submission(sampler, "sampler", backend, limits)
    program = QuantumProgram(shots=10, items=[CircuitItem(circuit,
                                                          circuit_arguments=np.zeros(0))])
    executor = QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(program, ExecutorOptions())
    validate_submission(executor.model_dump_json(), EXECUTOR_PROGRAM, backend, limits)
