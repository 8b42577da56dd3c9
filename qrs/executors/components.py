"""Independent parts of a circuit: qubits that never meet are simulated apart.

Qubits that share no multi-qubit gate and no classical bit (one measured into a bit
another's condition reads, or two measured into the same bit) evolve independently, and
so do their errors: the device noise models QRS builds attach each error to the qubits of
the gate it follows, with no crosstalk. The joint distribution of a circuit's outcomes
is then the product of its parts' distributions, so simulating every part alone and
pairing their shots is exact — and a 127-qubit ISA circuit that entangles 2 qubits costs
2 qubits' worth of simulation, not 2^127 amplitudes.

A part whose qubits see only measurements, barriers, delays and resets stays in |0>
(relaxation cannot excite it): its bits are drawn from the readout error alone
(``sample_passive``), with no simulator at all.

Each part is simulated on its own register of exactly its qubits (``part_circuit``), in
the order ``simulation_order`` picks: matrix-product-state cost depends on how far apart
interacting qubits sit in that order, and a device's numbering snakes across its lattice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Operations that leave a qubit in |0> at |0>: a part made only of these is passive.
PASSIVE_OPS = frozenset({"measure", "barrier", "delay", "reset"})

#: log2 of the operator Schmidt rank of two-qubit gates that entangle at most one bond
#: dimension doubling per application (controlled gates, two-qubit rotations); others 2.
_RANK_ONE_BIT = frozenset(
    {
        "cx",
        "cy",
        "cz",
        "ch",
        "cp",
        "crx",
        "cry",
        "crz",
        "cu",
        "cu1",
        "cu3",
        "cs",
        "csdg",
        "csx",
        "ecr",
        "rzz",
        "rxx",
        "ryy",
        "rzx",
    }
)


@dataclass(frozen=True)
class Part:
    """Qubits (device indices, sorted) that interact, the bits they write, their work."""

    qubits: tuple[int, ...]
    clbits: frozenset[int]
    operations: int  # instructions other than barriers
    passive: bool  # only PASSIVE_OPS: the qubits stay in |0>
    per_shot: bool  # mid-circuit measurement, reset or control flow: every shot is a run
    links: tuple[tuple[int, int, int], ...]  # (qubit, qubit, log2 Schmidt rank) per 2q gate
    delays: bool = False  # a delay: relaxation noise there (a Kraus channel when T2 > T1)

    @property
    def width(self) -> int:
        return len(self.qubits)


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, items: Sequence[int]) -> None:
        roots = [self.find(item) for item in items]
        for root in roots[1:]:
            self.parent[root] = roots[0]


def _instructions(circuit: Any) -> list[tuple[Any, tuple[int, ...], tuple[int, ...]]]:
    """``(operation, qubit indices, clbit indices)`` per instruction, barriers included."""
    return [
        (
            inst.operation,
            tuple(circuit.find_bit(q).index for q in inst.qubits),
            tuple(circuit.find_bit(c).index for c in inst.clbits),
        )
        for inst in circuit.data
    ]


def find_parts(circuit: Any) -> list[Part]:
    """The circuit's independent parts, in order of their lowest qubit; idle qubits omitted.

    Circuits with classical variables (``store``, expression conditions on vars) are one
    part: what a variable couples is not visible from instruction operands.
    """
    width = circuit.num_qubits
    joins = _UnionFind(width + circuit.num_clbits)
    instructions = _instructions(circuit)
    used: set[int] = set()
    for operation, qubits, clbits in instructions:
        if operation.name == "barrier":
            continue
        used.update(qubits)
        joins.union(list(qubits) + [width + c for c in clbits])
    if circuit.num_vars or circuit.num_stretches:
        joins.union(sorted(used))
    groups: dict[int, list[int]] = {}
    for qubit in sorted(used):
        groups.setdefault(joins.find(qubit), []).append(qubit)
    stats: dict[int, dict[str, Any]] = {
        root: {
            "ops": 0,
            "active": False,
            "per_shot": False,
            "links": [],
            "clbits": set(),
            "delays": False,
        }
        for root in groups
    }
    measured: set[int] = set()
    for operation, qubits, clbits in instructions:
        if operation.name == "barrier" or not qubits:
            continue
        entry = stats[joins.find(qubits[0])]
        entry["ops"] += 1
        entry["clbits"].update(clbits)
        name = operation.name
        entry["delays"] = entry["delays"] or name == "delay"
        if name not in PASSIVE_OPS:
            entry["active"] = True
            if measured.intersection(qubits) or hasattr(operation, "blocks"):
                entry["per_shot"] = True  # a gate after a measurement, or control flow
        elif name == "reset" and entry["active"]:
            entry["per_shot"] = True
        if name == "measure":
            measured.update(qubits)
        if len(qubits) == 2:
            entry["links"].append((*qubits, 1 if name in _RANK_ONE_BIT else 2))
        elif len(qubits) > 2:  # a multi-qubit gate or control flow: entangles its span fully
            entry["links"].extend((qubits[0], other, 2 * len(qubits)) for other in qubits[1:])
    return [
        Part(
            qubits=tuple(members),
            clbits=frozenset(stats[root]["clbits"]),
            operations=stats[root]["ops"],
            passive=not stats[root]["active"],
            per_shot=stats[root]["per_shot"],
            links=tuple(stats[root]["links"]),
            delays=stats[root]["delays"],
        )
        for root, members in sorted(groups.items(), key=lambda item: item[1][0])
    ]


def simulation_order(part: Part) -> tuple[int, ...]:
    """The part's qubits ordered so interacting qubits sit close (reverse Cuthill–McKee).

    Matrix-product-state simulation swaps distant qubits next to each other for every gate
    between them; on a GHZ chain across a 127-qubit device this order makes every gate a
    nearest-neighbour one (measured: 4× faster than device numbering).
    """
    if len(part.qubits) <= 2 or not part.links:
        return part.qubits
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    position = {qubit: index for index, qubit in enumerate(part.qubits)}
    rows = [position[a] for a, b, _ in part.links] + [position[b] for a, b, _ in part.links]
    cols = rows[len(part.links) :] + rows[: len(part.links)]
    size = len(part.qubits)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size)).tocsr()
    return tuple(part.qubits[i] for i in reverse_cuthill_mckee(graph, symmetric_mode=True))


def bond_exponents(part: Part, order: Sequence[int]) -> list[int]:
    """log2 of an upper bound on the MPS bond dimension at each cut of ``order``.

    A cut's Schmidt rank is at most 2^(qubits on the smaller side), and each two-qubit gate
    across it multiplies it by at most its operator Schmidt rank (2 for CX, CZ, ECR and
    two-qubit rotations, 4 for a general gate). Noise does not raise it in a trajectory.
    """
    size = len(order)
    position = {qubit: index for index, qubit in enumerate(order)}
    crossing = [0] * max(0, size - 1)
    for a, b, bits in part.links:
        low, high = sorted((position[a], position[b]))
        for cut in range(low, high):
            crossing[cut] += bits
    return [min(cut + 1, size - cut - 1, count) for cut, count in enumerate(crossing)]


def part_circuit(circuit: Any, order: Sequence[int], measure: bool = True) -> Any:
    """The instructions on ``order``'s qubits, on a register of ``len(order)`` qubits.

    Qubit ``order[i]`` becomes qubit ``i``; barriers (and, with ``measure=False``,
    measurements) are dropped; every classical bit and register of the circuit is kept
    (same names, same positions), so results come back in the same shape and parts' bits
    can be merged bit for bit.
    """
    from qiskit import QuantumCircuit

    position = {qubit: index for index, qubit in enumerate(order)}
    part = QuantumCircuit(
        len(order), name=circuit.name, global_phase=0, metadata=dict(circuit.metadata or {})
    )
    part.add_bits([bit for bit in circuit.clbits])
    for register in circuit.cregs:
        part.add_register(register)
    for operation, qubits, clbits in _instructions(circuit):
        if (
            not qubits
            or qubits[0] not in position
            or operation.name == "barrier"
            or (not measure and operation.name == "measure")
        ):
            continue  # barriers do nothing in a simulation (and may span other parts)
        part.append(operation, [position[q] for q in qubits], list(clbits), copy=False)
    return part


def binding_values(bindings: Any, circuit: Any, wanted: Sequence[Any]) -> np.ndarray:
    """Values of the ``wanted`` parameters of ``circuit``: shape ``(*bindings.shape, n)``."""
    every = list(circuit.parameters)
    values = bindings.as_array(every)
    return values[..., [every.index(parameter) for parameter in wanted]]


def probe_bond(pub: Any, part: Part, order: tuple[int, ...], cap: int, threads: int) -> int:
    """The largest MPS bond an ideal run of ``part`` reaches, capped at ``cap``.

    Runs the part once (first parameter binding, measurements dropped: the part has no
    mid-circuit ones, ``per_shot`` parts are not probed) and reads
    the bond dimensions off the saved state; 0 when the probe cannot run.
    """
    from qiskit_aer import AerSimulator
    from qiskit_aer.library import SaveMatrixProductState

    try:
        circuit = part_circuit(pub.circuit, order, measure=False)
        params = list(circuit.parameters)
        if params:
            values = binding_values(pub.parameter_values, pub.circuit, params)
            circuit = circuit.assign_parameters(
                dict(zip(params, values.reshape(-1, len(params))[0]))
            )
        circuit.append(
            SaveMatrixProductState(circuit.num_qubits, label="qrs_probe"), circuit.qubits
        )
        simulator = AerSimulator(
            method="matrix_product_state",
            max_parallel_threads=threads,
            matrix_product_state_max_bond_dimension=cap,
        )
        _, bonds = simulator.run(circuit, shots=1).result().data(0)["qrs_probe"]
        return max((len(bond) for bond in bonds), default=1)
    except Exception:  # a probe is only a hint: plan from the structural bound
        return 0


def passive_measurements(circuit: Any, parts: Sequence[Part]) -> list[tuple[int, int]]:
    """``(qubit, clbit)`` of every measurement on a passive part's qubits, in circuit order."""
    qubits = {q for part in parts if part.passive for q in part.qubits}
    return [
        (qs[0], cs[0])
        for operation, qs, cs in _instructions(circuit)
        if operation.name == "measure" and qs[0] in qubits
    ]


def sample_passive(
    circuit: Any,
    measurements: Sequence[tuple[int, int]],
    flips: dict[int, float],
    shape: tuple[int, ...],
    shots: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Bits of measurements of qubits in |0>: each reads 1 with its readout flip probability.

    Returns one ``BitArray`` of shape ``shape`` per classical register (zeros elsewhere),
    ready to be OR-ed with the simulated parts' bits.
    """
    from qiskit.primitives.containers.bit_array import BitArray

    bits = np.zeros((*shape, shots, circuit.num_clbits), dtype=bool)
    for qubit, clbit in measurements:  # a later measurement into the same bit overwrites it
        probability = flips.get(qubit, 0.0)
        bits[..., clbit] = rng.random((*shape, shots)) < probability if probability else False
    registers = {}
    for register in circuit.cregs:
        columns = [circuit.find_bit(bit).index for bit in register]
        registers[register.name] = BitArray.from_bool_array(bits[..., columns], order="little")
    return registers


def merge_bits(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OR the bit arrays of parts register by register: each bit is written by one part."""
    merged = dict(parts[0])
    for registers in parts[1:]:
        for name, bits in registers.items():
            merged[name] = merged[name] | bits if name in merged else bits
    return merged


def mps_memory_mb(exponents: Sequence[int], cap: int = 0) -> float:
    """Memory of an MPS with bond dimensions 2^exponents (capped at ``cap`` if set), MiB."""

    def bond(exponent: int) -> float:
        value = math.ldexp(1.0, min(exponent, 1000))
        return min(value, float(cap)) if cap else value

    bonds = [1.0] + [bond(e) for e in exponents] + [1.0]
    return sum(2 * 16 * left * right for left, right in itertools.pairwise(bonds)) / 2**20
