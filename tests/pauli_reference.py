"""The Pauli fidelities a noise learner should find: the server's noise model, twirled.

A learned layer is the box's two-qubit gate preceded by its single-qubit dressing (the
learning circuits implement each random twirl as rz-sx-rz-sx-rz on every qubit). The
noise after the ideal layer is N = S_noisy ∘ S_ideal⁻¹, computed exactly by Aer's superop
method from the same device noise model the server runs (two ``sx`` per qubit, then the
gate). Twirling leaves Pauli fidelities f_P = Tr(P N(P)) / d unchanged, and a learner that
repeats layer pairs sees only f_P · f_C(P) (C: conjugation by the gate), so it reports the
symmetric value sqrt(f_P f_C(P)) for both. The random rz angles between the two ``sx`` are
not modelled: that moves single-qubit contributions by ~1e-4 (``MODEL_TOLERANCE``).
"""

from __future__ import annotations

import itertools

import numpy as np

#: What the fixed ``sx sx`` dressing can be off by against the random one (fidelity units).
MODEL_TOLERANCE = 3e-4


def two_qubit_labels() -> list[str]:
    """The 15 non-identity two-qubit Pauli labels (little-endian: label[1] is qubit 0)."""
    return ["".join(p) for p in itertools.product("IXYZ", repeat=2)][1:]


def conjugate(label: str, gate) -> str:
    """``label`` conjugated by ``gate`` (signs dropped)."""
    from qiskit.quantum_info import Pauli

    return Pauli(label).evolve(gate, frame="s").to_label().lstrip("-+i")


def _fidelity(superop: np.ndarray, label: str) -> float:
    from qiskit.quantum_info import Pauli

    pauli = Pauli(label).to_matrix()
    d = pauli.shape[0]
    image = (superop @ pauli.flatten(order="F")).reshape(d, d, order="F")
    return float(np.real(np.trace(pauli @ image)) / d)


def layer_pair_fidelities(noise_model, gate) -> dict[str, float]:
    """sqrt(f_P f_C(P)) for every label, for ``gate`` on device qubits 0 and 1."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SuperOp
    from qiskit_aer import AerSimulator

    layer = QuantumCircuit(2)
    for qubit in (0, 1):
        layer.sx(qubit)
        layer.sx(qubit)
    layer.append(gate, [0, 1])
    noisy = layer.copy()
    noisy.save_superop()
    full = AerSimulator(method="superop", noise_model=noise_model).run(noisy).result()
    noise = np.asarray(full.data()["superop"]) @ np.linalg.inv(SuperOp(layer).data)
    return {label: float(np.sqrt(_fidelity(noise, label)
                                 * _fidelity(noise, conjugate(label, gate))))
            for label in two_qubit_labels()}


def conjugate_classes(gate) -> list[str]:
    """One label per {P, C(P)} pair: the independent numbers a learner reports."""
    seen, classes = set(), []
    for label in two_qubit_labels():
        if label not in seen:
            classes.append(label)
            seen |= {label, conjugate(label, gate)}
    return classes
