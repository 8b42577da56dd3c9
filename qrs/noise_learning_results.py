"""A noise-learner job's answer: learned maps as the legacy ``LayerError`` list, or as the
``NoiseLearnerV3ResultsModel`` that NoiseLearnerV3 reads (``noise_learning.py`` learns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit.circuit import CircuitInstruction
    from qiskit.quantum_info import PauliLindbladMap

    from .noise_learning import LearningRequest


def layer_qubits(layer: CircuitInstruction, num_qubits: int) -> list[int]:
    """Physical qubits of a box, ascending (the order learned maps use)."""
    from qiskit import QuantumRegister

    register = QuantumRegister(num_qubits, "q")
    return sorted(register.index(qubit) for qubit in layer.qubits)


def layer_errors(
    layers: list[CircuitInstruction], maps: list[PauliLindbladMap], num_qubits: int
) -> list[Any]:
    """Learned maps as the legacy ``LayerError``\\ s (layer circuit, qubits, generators, rates)."""
    from qiskit import QuantumCircuit, QuantumRegister
    from qiskit.quantum_info import PauliList, SparsePauliOp
    from qiskit_ibm_runtime.results import LayerError, PauliLindbladError
    from samplomatic.utils import undress_box

    register = QuantumRegister(num_qubits, "q")
    errors = []
    for layer, noise in zip(layers, maps):
        qubits = layer_qubits(layer, num_qubits)
        position = {physical: i for i, physical in enumerate(qubits)}
        body = undress_box(layer.operation).blocks[0]
        circuit = QuantumCircuit(len(qubits))
        for inner in body.data:
            targets = [
                position[register.index(layer.qubits[body.find_bit(q).index])]
                for q in inner.qubits
            ]
            circuit.append(inner.operation, targets)
        terms = noise.to_sparse_list()
        generators = (
            PauliList(
                [
                    SparsePauliOp.from_sparse_list([(paulis, indices, 1)], len(qubits)).paulis[0]
                    for paulis, indices, _rate in terms
                ]
            )
            if terms
            else PauliList(["I" * len(qubits)])[:0]
        )
        errors.append(
            LayerError(
                circuit, qubits, PauliLindbladError(generators, [rate for *_, rate in terms])
            )
        )
    return errors


def encode_v3(request: LearningRequest, maps: list[PauliLindbladMap], num_qubits: int) -> str:
    """The ``NoiseLearnerV3ResultsModel`` JSON, one result per box, with IBM's metadata."""
    from qiskit.quantum_info import QubitSparsePauliList
    from qiskit_ibm_runtime.results import NoiseLearnerV3Result, NoiseLearnerV3Results

    from .compat import noise_learner_v3_result_to_0_3

    results = []
    for layer, noise in zip(request.layers, maps):
        qubits = layer_qubits(layer, num_qubits)
        measures = any(
            inner.operation.name == "measure" for inner in layer.operation.blocks[0].data
        )
        # No bit-flip checks ran, so every shot was kept and every check "succeeded".
        if measures:
            metadata = {
                "learning_protocol": "trex",
                "post_selection": {
                    "fraction_kept": 1.0,
                    "success_rates": dict.fromkeys(qubits, 1.0),
                },
            }
        else:
            depths = list(request.options.layer_pair_depths)
            metadata = {
                "learning_protocol": "lindblad",
                "post_selection": {
                    "fraction_kept": dict.fromkeys(depths, 1.0),
                    "success_rates": {d: dict.fromkeys(qubits, 1.0) for d in depths},
                },
            }
        results.append(
            NoiseLearnerV3Result.from_generators(
                generators=[
                    QubitSparsePauliList.from_qubit_sparse_paulis([pauli])
                    for pauli in noise.generators()
                ],
                rates=noise.rates,
                metadata=metadata,
            )
        )
    return noise_learner_v3_result_to_0_3(NoiseLearnerV3Results(results)).model_dump_json()
