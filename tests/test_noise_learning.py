"""The ``noise-learner`` program and executor-based noise learning, through the stock client.

Three routes learn the same layer (a Pauli-twirled cx on fake_manila qubits 0 and 1) on a
real noisy server: the legacy ``NoiseLearner`` (server-side layer finding), the server-side
``NoiseLearnerV3`` and the client-side ``executor_noise_learner.NoiseLearnerV3`` (an
``executor`` job built by qiskit-noise-learning). IBM's analysis gives no error bars on gate
rates, so the three independent runs give them: their spread, pooled over the nine
independent Pauli fidelities, is the error bar of the mean that is compared with the
twirled channel of the server's own noise model (``tests/pauli_reference.py``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import requests
from qiskit import QuantumCircuit
from qiskit.circuit.library import CXGate
from qiskit.quantum_info import QubitSparsePauli
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
from qiskit_ibm_runtime import NoiseLearnerV3
from qiskit_ibm_runtime.executor_noise_learner import NoiseLearnerV3 as ClientNoiseLearnerV3
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from qiskit_ibm_runtime.noise_learner import NoiseLearner
from qiskit_ibm_runtime.noise_learner_v3.params_converters import (
    NOISE_LEARNER_V3_PARAMS_CONVERTERS)
from qiskit_ibm_runtime.options import NoiseLearnerOptions
from qiskit_ibm_runtime.options_models import NoiseLearnerV3Options
from qiskit_ibm_runtime.results import LayerError, NoiseLearnerResult, NoiseLearnerV3Results
from samplomatic import Twirl

from qrs.executors.device_noise import device_noise_model

from .support.payloads import SIGMAS, SEED_TRANSPILER, wire
from .pauli_reference import MODEL_TOLERANCE, conjugate_classes, layer_pair_fidelities

warnings.filterwarnings("ignore", category=DeprecationWarning)

#: Small enough for a busy 2-core machine (~30k shots per run), deep enough to resolve
#: per-pair infidelities of ~1 %.
LEARNING = dict(num_randomizations=8, shots_per_randomization=64,
                layer_pair_depths=[0, 1, 2, 4, 16, 32])


def cx_box(num_qubits: int):
    """The twirl-annotated box of one cx(0, 1), as NoiseLearnerV3 takes it."""
    circuit = QuantumCircuit(num_qubits)
    with circuit.box([Twirl()]):
        circuit.cx(0, 1)
    return circuit[0]


def fidelities(noise_map, labels: list[str]) -> np.ndarray:
    return np.array([noise_map.pauli_fidelity(QubitSparsePauli.from_label(label))
                     for label in labels])


def test_learned_layer_noise_agrees_with_the_twirled_noise_model(service):
    backend = service.backend("fake_manila")
    layer = QuantumCircuit(2)
    layer.cx(0, 1)
    layer.cx(0, 1)  # two occurrences of one layer: one LayerError
    layer.measure_all()
    circuit = generate_preset_pass_manager(backend=backend, optimization_level=0,
                                           initial_layout=[0, 1],
                                           seed_transpiler=SEED_TRANSPILER).run(layer)

    legacy = NoiseLearner(backend, NoiseLearnerOptions(**LEARNING)).run([circuit]).result()
    v3 = NoiseLearnerV3(backend, options=LEARNING).run([cx_box(backend.num_qubits)]).result()
    client = ClientNoiseLearnerV3(backend, options=LEARNING).run(
        [cx_box(backend.num_qubits)]).result()

    # the shapes each client class expects
    assert isinstance(legacy, NoiseLearnerResult) and len(legacy.data) == 1
    layer_error = legacy.data[0]
    assert isinstance(layer_error, LayerError) and layer_error.qubits == [0, 1]
    assert layer_error.circuit.count_ops() == {"cx": 1}
    assert layer_error.error.num_qubits == 2 and len(layer_error.error.rates) == 15
    assert legacy.metadata["input_options"]["num_randomizations"] == 8
    assert isinstance(v3, NoiseLearnerV3Results) and len(v3) == 1
    assert v3[0].metadata["learning_protocol"] == "lindblad"
    assert set(v3[0].metadata["post_selection"]["fraction_kept"]) == {0, 1, 2, 4, 16, 32}
    assert len(client) == 1

    labels = conjugate_classes(CXGate())
    legacy_map = _legacy_as_map(layer_error)
    runs = np.array([fidelities(legacy_map, labels), fidelities(v3[0].to_pauli_lindblad_map(),
                                                                 labels),
                     fidelities(client.to_pauli_lindblad_maps()[0], labels)])
    reference = layer_pair_fidelities(device_noise_model(FakeManilaV2()), CXGate())
    expected = np.array([reference[label] for label in labels])
    mean = runs.mean(axis=0)
    pooled = math.sqrt(runs.var(axis=0, ddof=1).mean())  # 9 fidelities x 2 dof
    error_bar = pooled / math.sqrt(len(runs))
    assert pooled < 0.003, runs  # the learning resolves the layer's ~1.3 % infidelity
    for label, got, want in zip(labels, mean, expected):
        assert abs(got - want) <= SIGMAS * error_bar + MODEL_TOLERANCE, \
            (label, got, want, error_bar)
    # On average over the Paulis the comparison is three times sharper.
    assert abs((mean - expected).mean()) <= \
        SIGMAS * error_bar / math.sqrt(len(labels)) + MODEL_TOLERANCE, (mean, expected)


def _legacy_as_map(layer_error: LayerError):
    """A ``LayerError``'s generators and rates as a ``PauliLindbladMap`` (same convention)."""
    from qiskit.quantum_info import PauliLindbladMap

    return PauliLindbladMap.from_list(
        [(pauli.to_label(), rate) for pauli, rate in
         zip(layer_error.error.generators, layer_error.error.rates)])


def _post(server, params: dict) -> requests.Response:
    return requests.post(server.url + "/api/v1/jobs", timeout=60,
                         headers={"Authorization": "Bearer x"},
                         json={"program_id": "noise-learner", "backend": "fake_manila",
                               "params": params})


def _v3_params(instructions, **options) -> dict:
    params = NOISE_LEARNER_V3_PARAMS_CONVERTERS["v0.3"].encoder(
        instructions, NoiseLearnerV3Options(**options)).model_dump(mode="json")
    return {**params, "version": 3}


def test_bad_noise_learner_payloads_get_a_clear_400(live_server):
    box = cx_box(5)
    cases = {
        "schema_version 'v9.9'": {**_v3_params([box]), "schema_version": "v9.9"},
        "num_randomizations": _v3_params([box]) | {"options": {
            **_v3_params([box])["options"], "num_randomizations": "many"}},
        "QRS_MAX_SHOTS": _v3_params([box], num_randomizations=100000),
    }
    wide = QuantumCircuit(5)
    wide.h(0)
    cases["not a box"] = _v3_params([wide[0]])
    bad_gate = QuantumCircuit(5)
    with bad_gate.box([Twirl()]):
        bad_gate.cz(0, 1)
    cases["uses cz"] = _v3_params([bad_gate[0]])
    cases["'xslow' pulse"] = _v3_params([box], bit_flip_checks={"pre_circuit": {"enable": True}})

    circuit = QuantumCircuit(2)
    circuit.cx(0, 1)
    legacy = {"circuits": [circuit], "options": {"num_randomizations": 0}}
    cases["num_randomizations: Value error"] = wire(legacy)
    cases["max_layers_to_learn"] = wire({"circuits": [circuit],
                                         "options": {"max_layers_to_learn": -1}})
    cases["bogus: Unexpected keyword"] = wire({"circuits": [circuit], "options": {"bogus": 1}})
    cases["params.circuits"] = wire({"circuits": [], "options": {}})
    for expected, params in cases.items():
        response = _post(live_server, params)
        assert response.status_code == 400, (expected, response.text)
        message = response.json()["errors"][0]["message"]
        assert expected.lower() in message.lower(), (expected, message)


@pytest.mark.parametrize("strategy, qubits", [("active", [0, 1]), ("active-accum", [0, 1, 2]),
                                             ("all", [0, 1, 2, 3, 4])])
def test_legacy_layers_follow_the_twirling_strategy(strategy, qubits):
    """Server-side layer finding: most frequent layer first, capped by max_layers_to_learn."""
    from qrs.noise_learning import legacy_layers
    from qrs.noise_learning_results import layer_qubits

    circuit = QuantumCircuit(5)
    circuit.h(2)
    circuit.cx(1, 2)
    for _ in range(3):
        circuit.cx(0, 1)
        circuit.barrier()
    (first,) = legacy_layers([circuit], strategy, max_layers=1)
    assert first.operation.blocks[0].count_ops().get("cx") == 1
    assert layer_qubits(first, 5) == qubits
    assert len(legacy_layers([circuit], strategy, max_layers=None)) == 2
