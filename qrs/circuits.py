"""What a circuit touches and needs: its qubits, its width, its instructions.

One rule each, for submission (``validation``, ``submission``) and execution (executors'
memory checks, the hybrid executor's routing, noise cut-down) alike: an ISA circuit is
as wide as the device, but only the qubits an instruction touches are simulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import InvalidInput

#: Instructions every backend runs besides its target's operations.
ALWAYS_SUPPORTED = frozenset({"barrier", "measure", "delay", "reset", "store"})


def pub_circuit(pub: Any) -> Any:
    """The circuit of a pub: a decoded tuple or a coerced ``SamplerPub``/``EstimatorPub``."""
    return pub.circuit if hasattr(pub, "circuit") else pub[0]


def used_qubits(circuit: Any) -> set[int]:
    """Indices of the qubits an instruction touches (ISA circuits carry many idle ones)."""
    used: set[int] = set()
    for instruction in circuit.data:
        if instruction.operation.name != "barrier":
            used.update(circuit.find_bit(q).index for q in instruction.qubits)
    return used


def active_qubits(circuit: Any) -> int:
    """How many qubits an instruction touches; Aer truncates the idle ones."""
    return len(used_qubits(circuit))


def circuit_width(pubs: Sequence[Any]) -> int:
    """Most active qubits of any pub's circuit (tuples or coerced pubs): what sizes a
    job's simulation, and what batching and routing go by."""
    return max(active_qubits(pub_circuit(pub)) for pub in pubs)


def observable_qubits(observables: Any) -> set[int]:
    """Qubits on which any Pauli term of an ``ObservablesArray`` is not the identity."""
    support: set[int] = set()
    for observable in np.ravel(observables.tolist()):
        for pauli in observable:
            support.update(i for i, char in enumerate(reversed(pauli)) if char != "I")
    return support


def pub_qubits(pub: Any) -> set[int]:
    """Qubits a coerced Sampler or Estimator pub needs simulated (and their noise)."""
    qubits = used_qubits(pub.circuit)
    if hasattr(pub, "observables"):
        qubits |= observable_qubits(pub.observables)
    return qubits


def unsupported_instructions(circuit: Any, supported: frozenset[str]) -> set[str]:
    """Operations in ``circuit`` (control-flow blocks included) the device does not run."""
    from qiskit.circuit import CONTROL_FLOW_OP_NAMES, ControlFlowOp

    allowed = supported | CONTROL_FLOW_OP_NAMES | ALWAYS_SUPPORTED
    missing: set[str] = set()
    for instruction in circuit.data:
        operation = instruction.operation
        if isinstance(operation, ControlFlowOp):
            for block in operation.blocks:
                missing |= unsupported_instructions(block, supported)
        elif operation.name not in allowed:
            missing.add(operation.name)
    return missing


def check_instructions(
    circuits: Iterable[Any], supported: frozenset[str], backend: str, where: str
) -> None:
    """Refuse circuits the device cannot run (not transpiled for it), as IBM does at submit.

    ``where`` names the list the circuits came from in the message (``params.pubs``,
    ``quantum_program.items``).
    """
    for index, circuit in enumerate(circuits):
        missing = unsupported_instructions(circuit, supported)
        if missing:
            raise InvalidInput(
                f"{where}[{index}]: the circuit uses {', '.join(sorted(missing))}, which "
                f"{backend} does not support. Transpile it for the backend first, e.g. with "
                "generate_preset_pass_manager(backend=backend).run(circuit)."
            )
