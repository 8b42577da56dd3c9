"""The ``executor`` program: QuantumPrograms as qiskit-ibm-runtime's ``Executor`` sends them.

From 0.50 on, the client's ``executor_sampler.Sampler``, ``executor_estimator.Estimator``
and ``Executor`` twirl, insert dynamical decoupling and post-process on the client; what
reaches the server is one ``QuantumProgram``: items of (circuit, parameter sweep) or
(template circuit, samplex, samplex arguments), with shots per element. This module is
the payload side of such jobs:

* ``decode_program`` reads the params with the client's own schema models and converters
  (``ibm_quantum_schemas``, ``QUANTUM_PROGRAM_PARAMS_CONVERTERS``), so the payload is
  exactly what the client wrote; ``check_program`` adds the backend and the server limits.
* ``encode_result`` writes the ``QuantumProgramResultModel`` text the client's
  ``ExecutorResultDecoder`` reads; ``log_options`` names what a simulator cannot honour.

Running a program is the executors' business (``qrs.executors.programs``), so this module
imports nothing from ``qrs.executors`` and the two never import each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import joblog
from .circuits import check_instructions
from .codec import params_object
from .errors import InvalidInput, LimitExceeded
from .states import Program
from .validation import Limits, check_result_size

if TYPE_CHECKING:
    from samplomatic.quantum_program import QuantumProgram, QuantumProgramResult

EXECUTOR_PROGRAM = Program.EXECUTOR.value

#: Params schema versions this server reads (results are written as v2.0 models).
SCHEMA_VERSIONS = ("v2.0",)

#: Execution options a simulator cannot honour, with the reason the job log gives.
_UNSIMULATED = {
    "rep_delay": "a simulator has no repetition delay",
    "scheduler_timing": "a simulator has no pulse schedule, so no timing metadata",
    "stretch_values": "a simulator has no pulse schedule, so no stretch values",
}


@dataclass
class DecodedProgram:
    """A decoded executor payload: the program and what travels with it unchanged."""

    program: QuantumProgram
    options: dict[str, Any]
    model: Any  # the validated ParamsModel (passthrough data is returned from it as sent)

    @property
    def semantic_role(self) -> str | None:
        """The program's role as the client set it; returned with the result."""
        return self.model.quantum_program.semantic_role


def describe_error(exc: Exception) -> str:
    """A pydantic error as its first few ``field.path: message``; others with their type."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {exc}"


def decode_program(params: str | dict[str, Any]) -> DecodedProgram:
    """Decode executor params the way the client encodes them. Raises ``InvalidInput``."""
    from pydantic import ValidationError
    from samplomatic.quantum_program import SamplexItem

    from .compat import QUANTUM_PROGRAM_PARAMS_CONVERTERS

    params = params_object(params, "with 'schema_version', 'quantum_program' and 'options'")
    program = params.get("quantum_program")
    circuits = program.get("circuits") if isinstance(program, dict) else None
    if isinstance(circuits, dict) and "b64_data" not in circuits:
        # OpenQASM 3 text: its parser allocates every register it declares before any
        # width check (payload_guard); the client always sends QPY.
        raise InvalidInput(
            "params.quantum_program.circuits: only QPY circuits ('b64_data') "
            "are accepted, not OpenQASM 3 text; qiskit-ibm-runtime sends QPY."
        )
    version = params.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        raise InvalidInput(
            f"params.schema_version {version!r} is not supported; this server reads executor "
            f"params {', '.join(SCHEMA_VERSIONS)} (what qiskit-ibm-runtime 0.51 sends)."
        )
    converter = QUANTUM_PROGRAM_PARAMS_CONVERTERS[version]
    try:
        model = converter.model.model_validate(params)
    except MemoryError:
        raise  # the caller's limit, not the user's syntax (a 413 from submission_check)
    except ValidationError as exc:  # the payload's shape is wrong
        raise InvalidInput(f"executor params are malformed: {describe_error(exc)}") from None
    except Exception as exc:  # base64/zlib/QPY that validation had to open
        raise InvalidInput(
            f"the quantum program could not be decoded: {describe_error(exc)}"
        ) from None
    try:
        program, _ = converter.decoder(model)
        for item in program.items:
            if isinstance(item, SamplexItem):
                item.samplex.finalize()  # serialized samplexes arrive unfinalized
    except MemoryError:
        raise
    except Exception as exc:  # bad QPY, samplex JSON or arguments: the user's input
        raise InvalidInput(
            f"the quantum program could not be decoded: {describe_error(exc)}"
        ) from None
    return DecodedProgram(
        program=program, options=model.options.model_dump(mode="json"), model=model
    )


def check_program(decoded: DecodedProgram, limits: Limits) -> int:
    """Check the program against the backend and the server limits (both in ``limits``).

    Returns the number of circuit elements (bindings) the program runs.
    """
    program = decoded.program
    backend_qubits = limits.backend_qubits
    if not program.items:
        raise InvalidInput("quantum_program.items is empty; a program needs at least one item.")
    if len(program.items) > limits.max_pubs:
        raise LimitExceeded(
            f"{len(program.items)} program items in one job; the limit is "
            f"{limits.max_pubs} (QRS_MAX_PUBS). Split the program."
        )
    if program.shots > limits.max_pub_shots:
        raise LimitExceeded(
            f"quantum_program.shots is {program.shots}; the limit is "
            f"{limits.max_pub_shots} (QRS_MAX_PUB_SHOTS)."
        )
    elements = 0
    result_bytes = 0
    for index, item in enumerate(program.items):
        if item.circuit.num_qubits > backend_qubits:
            raise InvalidInput(
                f"quantum_program.items[{index}]: the circuit has {item.circuit.num_qubits} "
                f"qubits but the backend has only {backend_qubits}. Transpile it first."
            )
        size = math.prod(item.shape)
        if size > limits.max_parameter_bindings:
            raise LimitExceeded(
                f"quantum_program.items[{index}] has {size} elements (shape {item.shape}); the "
                f"limit is {limits.max_parameter_bindings} (QRS_MAX_PARAMETER_BINDINGS)."
            )
        elements += size
        result_bytes += size * program.shots * sum(creg.size for creg in item.circuit.cregs)
    check_instructions(
        (item.circuit for item in program.items),
        limits.operations,
        limits.backend,
        "quantum_program.items",
    )
    if elements * program.shots > limits.max_shots:
        raise LimitExceeded(
            f"The program asks for {elements * program.shots} shots in total; the limit per "
            f"job is {limits.max_shots} (QRS_MAX_SHOTS). Use fewer shots or split the job."
        )
    check_result_size(result_bytes, limits, "one byte each: executor results are boolean arrays")
    return elements


def encode_result(result: QuantumProgramResult, decoded: DecodedProgram) -> str:
    """The ``QuantumProgramResultModel`` JSON the client's ``ExecutorResultDecoder`` reads."""
    from .compat import (
        CompressedTensorModel,
        ItemMetadataModel,
        MetadataModel,
        QuantumProgramResultItemModel,
        QuantumProgramResultModel,
    )
    from .compat import SchemaChunkPart as ChunkPart
    from .compat import SchemaChunkSpan as ChunkSpan

    items = [
        QuantumProgramResultItemModel(
            results={
                name: CompressedTensorModel.from_numpy(np.asarray(value))
                for name, value in item.items()
            },
            metadata=ItemMetadataModel(),
        )
        for item in result
    ]
    spans = [
        ChunkSpan(
            start=span.start,
            stop=span.stop,
            parts=[
                ChunkPart(
                    idx_item=part.idx_item,
                    size=part.size,
                    permutation=list(range(len(decoded.program.items[part.idx_item].shape))),
                    element_range=(0, part.size, 1),
                )
                for part in span.parts
            ],
        )
        for span in result.metadata.chunk_timing
    ]
    model = QuantumProgramResultModel(
        data=items,
        metadata=MetadataModel(chunk_timing=spans),
        passthrough_data=decoded.model.quantum_program.passthrough_data,
        semantic_role=decoded.semantic_role,
    )
    return model.model_dump_json()


def log_options(decoded: DecodedProgram, executor_name: str) -> None:
    """Name in the job log each option the simulator honours only in part, or not at all."""
    options = decoded.options
    for key, reason in _UNSIMULATED.items():
        if options.get(key):
            joblog.emit(f"Option {key}={options[key]!r} ignored: {reason}.")
    if options.get("init_qubits") is False:
        joblog.emit("Option init_qubits=False ignored: every simulated shot starts in |0>.")
    if options.get("experimental"):
        joblog.emit(
            f"Experimental options ignored by the {executor_name} executor: "
            f"{options['experimental']}"
        )
    chunks = {item.chunk_size for item in decoded.program.items} - {None}
    if chunks:
        joblog.emit(f"chunk_size {sorted(chunks)} ignored: each item runs as one pub.")
