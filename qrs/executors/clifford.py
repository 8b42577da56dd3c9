"""Which qubits of a circuit see a non-Clifford operation (for the stabilizer method).

An operation is Clifford here when Aer's stabilizer method runs it and
``qiskit.quantum_info.Clifford`` accepts it: ``rz`` only at multiples of π/2 (what a
transpiled H, S or a twirling Pauli becomes), with the angle checked for every parameter
binding of the pub. ``rx(π/2)`` is Clifford but not a stabilizer instruction, so it counts
as non-Clifford: ISA circuits never contain it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: Bindings evaluated one by one for parameter *expressions* (plain parameters are
#: checked as one array); beyond this many the operation is taken as non-Clifford.
MAX_EXPRESSION_EVALUATIONS = 100_000


@functools.lru_cache(maxsize=1)
def stabilizer_operations() -> frozenset[str]:
    """Instruction names Aer's stabilizer method accepts."""
    from qiskit_aer import AerSimulator

    return frozenset(AerSimulator(method="stabilizer").target.operation_names)


@functools.lru_cache(maxsize=4096)
def _clifford_gate(name: str, params: tuple[float, ...]) -> bool:
    """Whether ``name(params)`` is Clifford, by qiskit's own test (cached per angle)."""
    from qiskit.circuit import QuantumCircuit
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.exceptions import QiskitError
    from qiskit.quantum_info import Clifford

    gate = get_standard_gate_name_mapping().get(name)
    if gate is None:
        return False
    if params:
        gate = type(gate)(*params)
    circuit = QuantumCircuit(gate.num_qubits)
    circuit.append(gate, range(gate.num_qubits))
    try:
        Clifford(circuit)
        return True
    except QiskitError:
        return False


def _angles(expression: Any, circuit: Any, bindings: Any) -> np.ndarray | None:
    """Every value ``expression`` takes over the pub's bindings (``None``: too many to try)."""
    from qiskit.circuit import Parameter

    from .components import binding_values

    if isinstance(expression, Parameter):
        return np.ravel(binding_values(bindings, circuit, [expression]))
    count = max(1, bindings.size)
    if count * len(expression.parameters) > MAX_EXPRESSION_EVALUATIONS:
        return None
    ordered = list(expression.parameters)
    values = binding_values(bindings, circuit, ordered).reshape(count, len(ordered))
    return np.array([float(expression.bind_all(dict(zip(ordered, row)))) for row in values])


def _operation_is_clifford(operation: Any, circuit: Any, bindings: Any) -> bool:
    name = operation.name
    if hasattr(operation, "blocks"):  # control flow: every block's operations count
        return name in stabilizer_operations() and all(
            _operation_is_clifford(inst.operation, circuit, None)
            for block in operation.blocks
            for inst in block.data
        )
    if name in ("measure", "barrier", "delay", "reset"):
        return True
    if name not in stabilizer_operations():
        return False
    params = getattr(operation, "params", [])
    if not params:
        return _clifford_gate(name, ())
    numeric: list[np.ndarray] = []
    for param in params:
        if hasattr(param, "parameters") and param.parameters:
            values = None if bindings is None else _angles(param, circuit, bindings)
            if values is None:
                return False
        else:
            values = np.array([float(param)])
        numeric.append(values)
    if len(numeric) != 1:
        return False
    distinct = np.unique(np.round(numeric[0], 9))
    return all(_clifford_gate(name, (float(angle),)) for angle in distinct)


def non_clifford_qubits(circuit: Any, bindings: Any = None) -> tuple[set[int], str]:
    """Qubits touched by a non-Clifford operation, and the first such operation, named."""
    qubits: set[int] = set()
    example = ""
    for instruction in circuit.data:
        if not _operation_is_clifford(instruction.operation, circuit, bindings):
            indices = [circuit.find_bit(q).index for q in instruction.qubits]
            qubits.update(indices)
            if not example:
                params = ", ".join(
                    f"{p:.3g}" if isinstance(p, float) else str(p)
                    for p in getattr(instruction.operation, "params", [])
                )
                example = f"{instruction.operation.name}({params}) on qubit(s) {indices}"
    return qubits, example
