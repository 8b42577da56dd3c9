"""Checks on model-read params (``executor`` programs, NoiseLearnerV3) before pydantic
and the client's converters run.

These params are read by ``ibm_quantum_schemas`` models, whose
validators open the payloads the moment they run: every ``CompressedTensorModel``
(circuit arguments, samplex arguments, and any ``{data, shape, dtype}`` leaf of
``passthrough_data``) is zlib-inflated whole, the circuits' QPY is inflated whole and
loaded without a look at its header, a samplex's JSON carries QPY of its own, and
OpenQASM 3 text is parsed by a parser that allocates every register it declares.
``check_program_params`` walks the plain JSON first, with ``payload_guard``'s
primitives, and refuses with a 4xx naming the field:

* OpenQASM 3 circuits (the client always sends QPY; a QASM ``qubit[1000000] q;``
  allocated 290 MB before any width check could run);
* tensors and QPY that inflate past the job's decoded-size budget;
* circuits, in the program's QPY, a ``QpyModel`` (``circuit_b64``: NoiseLearnerV3's
  instructions) or inside a samplex, wider than the backend, with more clbits than
  allowed, or declaring counts their payload cannot hold;
* Pauli-Lindblad maps on more qubits than the backend has.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .payload_guard import Budget, b64, check_qpy, inflate, path_text, walk

if TYPE_CHECKING:
    from .validation import Limits

#: Bytes per element of ``CompressedTensorModel`` dtypes once decoded; booleans arrive
#: bit-packed and are unpacked to one byte, then copied to ``bool``.
_ELEMENT_BYTES = {
    "f16": 2,
    "f32": 4,
    "f64": 8,
    "i8": 1,
    "i16": 2,
    "i32": 4,
    "i64": 8,
    "u8": 1,
    "u16": 2,
    "u32": 4,
    "u64": 8,
    "c64": 8,
    "c128": 16,
    "bool": 2,
}

_ROOT = "params"


def check_program_params(params: Any, limits: Limits) -> int:
    """Refuse executor params whose decoding would be unsafe; returns the bytes charged."""
    budget = Budget(limits.max_decoded_bytes)
    program = params.get("quantum_program") if isinstance(params, dict) else None
    circuits = program.get("circuits") if isinstance(program, dict) else None
    if isinstance(circuits, dict):
        _check_circuits(circuits, limits, budget)
    for path, node in walk(params):
        if not isinstance(node, dict):
            continue
        if _is_tensor(node):
            _check_tensor(path_text(path, _ROOT), node, budget)
        elif isinstance(node.get("circuit_b64"), str):  # QpyModel: plain QPY, one circuit
            where = path_text(path, _ROOT) + ".circuit_b64"
            raw = b64(where, node["circuit_b64"])
            budget.charge(where, len(raw))
            check_qpy(where, raw, limits, budget, programs=1)
        elif isinstance(node.get("samplex_json"), str):
            _check_samplex(path_text(path, _ROOT), node["samplex_json"], limits, budget)
        elif (
            "sparse_terms" in node
            and isinstance(node.get("num_qubits"), int)
            and node["num_qubits"] > limits.backend_qubits
        ):
            raise InvalidInput(
                f"{path_text(path, _ROOT)}: a Pauli-Lindblad map on {node['num_qubits']} "
                f"qubits; the backend has only {limits.backend_qubits}."
            )
    return budget.total - budget.left


def _check_circuits(circuits: dict, limits: Limits, budget: Budget) -> None:
    """The program's circuits: QPY only, each header within the limits."""
    path = f"{_ROOT}.quantum_program.circuits"
    if "b64_data" not in circuits:
        raise InvalidInput(
            f"{path}: only QPY circuits ('b64_data') are accepted, not OpenQASM "
            "3 text; qiskit-ibm-runtime sends QPY."
        )
    if isinstance(circuits["b64_data"], str):
        raw, _ = inflate(f"{path}.b64_data", b64(f"{path}.b64_data", circuits["b64_data"]), budget)
        check_qpy(f"{path}.b64_data", raw, limits, budget)


def _is_tensor(node: dict) -> bool:
    return (
        isinstance(node.get("data"), str)
        and isinstance(node.get("shape"), list)
        and isinstance(node.get("dtype"), str)
    )


def _check_tensor(path: str, node: dict, budget: Budget) -> None:
    """A ``CompressedTensorModel``: inflate within the budget; charge its decoded array.

    A dict that only looks like one (a ``passthrough_data`` leaf that is not zlib) is
    left to the model, which keeps it as a plain dict.
    """
    try:
        _, size = inflate(f"{path}.data", b64(f"{path}.data", node["data"]), budget)
    except InvalidInput:
        return
    shape = node["shape"]
    if all(isinstance(n, int) and n >= 0 for n in shape):
        budget.charge(
            path, min(math.prod(shape), 8 * size) * _ELEMENT_BYTES.get(node["dtype"], 16)
        )


def _check_samplex(path: str, text: str, limits: Limits, budget: Budget) -> None:
    """A samplex's JSON: every nested JSON string in it is parsed by samplomatic in turn,
    and parameter tables carry QPY circuits (``circuit_base64``): check those headers."""
    pending = [text]
    while pending:
        try:
            tree = json.loads(pending.pop())
        except (ValueError, RecursionError):
            continue  # not JSON: samplomatic refuses it itself
        for _, node in walk(tree):
            values = node.values() if isinstance(node, dict) else node
            for value in values:
                if isinstance(value, str) and value[:1] in ("{", "["):
                    pending.append(value)
            if isinstance(node, dict) and isinstance(node.get("circuit_base64"), str):
                raw = b64(f"{path}.samplex_json", node["circuit_base64"])
                budget.charge(path, len(raw))
                check_qpy(f"{path}.samplex_json", raw, limits, budget)
