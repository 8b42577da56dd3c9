"""Mitigated programs on the qubits a job uses, not on the whole device.

An ISA circuit for a 156-qubit device has 156 qubits even when it entangles two. The
client's preparation twirls and measures every qubit of it (TREX calibrates them all), so
the program it builds would touch all 156 — no simulator holds that state, though all
but two stay in |0⟩. A simulator can do better than hardware here: prepare the program
on the qubits the job really uses (its instructions and its observables' support), with a
backend cut down to those physical qubits (their gates, durations and couplings, so DD
and noise learning stay right), and run each prepared circuit embedded back at those
physical qubits, so every gate sees its own qubit's noise.
"""

from __future__ import annotations

from typing import Any

from ..circuits import observable_qubits, used_qubits


def active_qubits(pubs: list[Any]) -> list[int]:
    """Physical qubits the pubs use (instructions, observables), in order."""
    qubits: set[int] = set()
    for pub in pubs:
        qubits |= used_qubits(pub.circuit)
        if hasattr(pub, "observables"):
            qubits |= observable_qubits(pub.observables)
    return sorted(qubits) or [0]


def restrict_circuit(circuit: Any, subset: list[int]) -> Any:
    """``circuit`` on the ``subset`` qubits only (idle qubits and their barriers dropped)."""
    from qiskit import QuantumCircuit

    position = {qubit: index for index, qubit in enumerate(subset)}
    reduced = QuantumCircuit(
        len(subset),
        name=circuit.name,
        global_phase=circuit.global_phase,
        metadata=dict(circuit.metadata or {}),
    )
    for register in circuit.cregs:
        reduced.add_register(register)
    loose = [bit for bit in circuit.clbits if not circuit.find_bit(bit).registers]
    if loose:
        reduced.add_bits(loose)
    for instruction in circuit.data:
        indices = [circuit.find_bit(qubit).index for qubit in instruction.qubits]
        kept = [position[index] for index in indices if index in position]
        if instruction.operation.name == "barrier":
            if kept:
                reduced.barrier(*kept)
            continue
        if len(kept) != len(indices):  # a delay on an idle qubit
            continue
        reduced.append(
            instruction.operation, [reduced.qubits[i] for i in kept], instruction.clbits
        )
    return reduced


def restrict_observables(observables: Any, subset: list[int], width: int) -> Any:
    """An ``ObservablesArray`` on ``width`` qubits as one on the ``subset`` qubits."""
    import numpy as np
    from qiskit.primitives.containers.observables_array import ObservablesArray

    def reduce(term: str) -> str:
        little = term[::-1]  # character i is qubit i
        return "".join(little[qubit] for qubit in subset)[::-1]

    flat = [
        {reduce(term): coeff for term, coeff in observable.items()}
        for observable in np.ravel(observables.tolist())
        if observable is not None
    ]
    return ObservablesArray(
        np.array(flat, dtype=object).reshape(observables.shape) if observables.shape else flat[0]
    )


def restrict_pub(pub: Any, subset: list[int]) -> Any:
    """A ``SamplerPub``/``EstimatorPub`` on the ``subset`` qubits."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    circuit = restrict_circuit(pub.circuit, subset)  # the same Parameter objects, so
    values = pub.parameter_values  # the bindings carry over as they are
    if isinstance(pub, SamplerPub):
        return SamplerPub(circuit, values, pub.shots)
    observables = restrict_observables(pub.observables, subset, pub.circuit.num_qubits)
    return EstimatorPub(circuit, observables, values, pub.precision)


def restrict_backend(backend: Any, subset: list[int]) -> Any:
    """A ``BackendV2`` of the ``subset`` physical qubits: their instructions and timing."""
    from qiskit.providers import BackendV2, Options
    from qiskit.transpiler import Target

    target = backend.target
    position = {qubit: index for index, qubit in enumerate(subset)}
    properties = target.qubit_properties
    reduced = Target(
        num_qubits=len(subset),
        dt=target.dt,
        granularity=target.granularity,
        min_length=target.min_length,
        pulse_alignment=target.pulse_alignment,
        acquire_alignment=target.acquire_alignment,
        qubit_properties=[properties[q] for q in subset] if properties else None,
    )
    for name in target.operation_names:
        entries = target[name]
        kept = {
            tuple(position[q] for q in qargs): props
            for qargs, props in entries.items()
            if qargs is not None and all(q in position for q in qargs)
        }
        if kept or None in entries:
            reduced.add_instruction(target.operation_from_name(name), kept or None, name=name)

    class SubsetBackend(BackendV2):
        """The device seen through the job's qubits (preparation only: it runs nothing)."""

        @property
        def target(self) -> Target:
            return reduced

        @property
        def max_circuits(self) -> int | None:
            return None

        @classmethod
        def _default_options(cls) -> Options:
            return Options()

        def run(self, run_input: Any, **options: Any) -> Any:
            raise NotImplementedError("a SubsetBackend only prepares programs")

    return SubsetBackend(name=f"{backend.name}[{len(subset)} qubits]")


def embed_program(program: Any, subset: list[int], width: int) -> None:
    """Put each item's circuit back at the ``subset`` physical qubits of a ``width``-qubit
    device, in place (parameters and classical registers unchanged)."""
    from qiskit import QuantumCircuit, QuantumRegister

    for item in program.items:
        reduced = item.circuit
        if reduced.num_qubits != len(subset):
            continue
        full = QuantumCircuit(
            QuantumRegister(width, "q"),
            *reduced.cregs,
            name=reduced.name,
            metadata=reduced.metadata,
        )
        full.compose(reduced, qubits=subset, clbits=reduced.clbits, inplace=True)
        item.circuit = full
