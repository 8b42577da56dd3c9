"""A submission's params check as one pure function: ``check_submission``.

It takes the params text, the program, the limits (``validation.Limits``: the server's and
the backend's) and the backend's configuration — plain, picklable values — and returns a
small ``Summary`` or raises a typed ``QRSError``. It touches no store, no Flask and no
global state, so ``submission`` can run it in the web process or, for big jobs, in a
memory-limited child process (``validator_process``), where a payload that still manages
to allocate too much kills only that child.

The checks run cheapest first: the payload guards on the plain JSON (sizes, headers,
allowed types; nothing is decoded), then decoding with the restricted decoder or the
program's own models, then the pub, program and option limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import schemas
from .circuits import check_instructions, circuit_width, pub_circuit
from .codec import decode_params
from .errors import InvalidInput, PayloadTooLarge
from .executors.legacy_options import check_options
from .noise_learning import check_request, decode_request
from .payload_guard import check_params
from .program_guard import check_program_params
from .quantum_program import check_program, decode_program
from .states import Program
from .validation import Limits, validate_pubs


@dataclass(frozen=True)
class Summary:
    """What the store records about an accepted job's params."""

    num_pubs: int
    num_circuits: int
    width: int  # qubits the widest circuit uses (0: not batchable)
    max_execution_time: int | None  # from the options, if set


@dataclass(frozen=True)
class _Device:
    """What the noise-learner checks read of a ``BackendV2``, from ``Limits``."""

    name: str
    num_qubits: int
    operation_names: frozenset[str]

    @property
    def target(self) -> _Device:
        return self  # ``backend.target.operation_names``


def _json(params_text: str) -> Any:
    try:
        return json.loads(params_text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"params is not valid JSON: {exc}") from None


def _guard(program_id: str, params: Any) -> Callable[[Any, Limits], int]:
    """The payload check for this program: model-read payloads (``executor``,
    NoiseLearnerV3) or ``RuntimeEncoder`` ones (sampler, estimator, legacy NoiseLearner)."""
    modelled = program_id == Program.EXECUTOR.value or (
        program_id == Program.NOISE_LEARNER.value
        and isinstance(params, dict)
        and "schema_version" in params
    )
    return check_program_params if modelled else check_params


def decoded_estimate(params_text: str, program_id: str, limits: Limits) -> int:
    """Bytes the payload checks expect decoding to take (inflated payloads and declared
    bits), raising their refusals; cheap, nothing is decoded. ``validator_process``
    sends only jobs estimated big to the memory-limited child."""
    params = _json(params_text)
    return _guard(program_id, params)(params, limits) + len(params_text)


def check_submission(
    params_text: str,
    program_id: str,
    limits: Limits,
    configuration: dict[str, Any] | None = None,
    guarded: bool = False,
) -> Summary:
    """Check a job's params completely; raise ``InvalidInput``/``LimitExceeded``/
    ``PayloadTooLarge`` naming what is wrong. ``configuration`` is the backend's (for
    ``execution.rep_delay``); ``guarded``: ``decoded_estimate`` already ran the payload
    checks on this text."""
    params = _json(params_text)
    try:
        if not guarded:
            _guard(program_id, params)(params, limits)
        if program_id == Program.EXECUTOR.value:
            program = decode_program(params)
            return Summary(len(program.program.items), check_program(program, limits), 0, None)
        if program_id == Program.NOISE_LEARNER.value:
            device = _Device(limits.backend, limits.backend_qubits, limits.operations)
            learning = decode_request(params, device)
            check_request(learning, device, limits)
            return Summary(len(learning.layers), len(learning.layers), 0, None)
        decoded = decode_params(params_text, program_id)
        schemas.load(schemas.PrimitiveOptions, decoded.options, "params.options")
        check_options(program_id, decoded.options, configuration)
        circuits = validate_pubs(program_id, decoded.pubs, decoded.options, limits)
        check_instructions(
            (pub_circuit(pub) for pub in decoded.pubs),
            limits.operations,
            limits.backend,
            "params.pubs",
        )
        max_time = decoded.options.get("max_execution_time")
        return Summary(
            len(decoded.pubs),
            circuits,
            circuit_width(decoded.pubs),
            int(max_time) if max_time else None,
        )
    except MemoryError:
        raise PayloadTooLarge(
            "Checking this job's params needed more memory than this "
            "server allows for it (QRS_VALIDATION_MEMORY_MB); send a "
            "smaller job."
        ) from None


def warm_up() -> None:
    """Check one tiny job of each program, so every module and library the checks use
    is loaded: a validation child does this before capping its address space (mapping a
    library afterwards could fail for want of room), and its fork server once for all."""
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit_ibm_runtime import QuantumProgram, RuntimeEncoder
    from qiskit_ibm_runtime.options_models import ExecutorOptions
    from samplomatic.quantum_program import CircuitItem

    from .compat import QUANTUM_PROGRAM_PARAMS_CONVERTERS

    circuit = QuantumCircuit(1, 1)
    circuit.sx(0)
    circuit.measure(0, 0)
    limits = Limits(
        max_pubs=1,
        max_shots=100,
        max_pub_shots=100,
        max_parameter_bindings=1,
        max_observables=1,
        max_decoded_bytes=2**20,
        max_clbits=1,
        max_result_bytes=2**20,
        backend="warm-up",
        backend_qubits=1,
        operations=frozenset({"sx", "measure"}),
    )
    sampler = json.dumps({"pubs": [(circuit, np.zeros(0), 10)], "options": {}}, cls=RuntimeEncoder)
    check_submission(sampler, Program.SAMPLER.value, limits)
    program = QuantumProgram(shots=10, items=[CircuitItem(circuit, circuit_arguments=np.zeros(0))])
    executor = QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(program, ExecutorOptions())
    check_submission(executor.model_dump_json(), Program.EXECUTOR.value, limits)
