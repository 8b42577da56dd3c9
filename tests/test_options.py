"""Option mapping and IBM's option checks, without HTTP (``qrs/executors/options.py`` and
``legacy_options.py``), plus the 400 a bad option gets at submission."""

from __future__ import annotations

import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qrs.errors import InvalidInput
from qrs.executors.legacy_options import check_options, estimator_plan, sampler_plan
from qrs.executors.options import estimator_options, sampler_options

from .support.payloads import bell, isa, wire


def test_sampler_options_are_consumed_and_leftovers_reported():
    mapped = sampler_options({"default_shots": 10, "simulator": {"seed_simulator": 7},
                              "experimental": {"x": 1},
                              "execution": {"meas_type": "classified", "init_qubits": True}})
    assert mapped.primitive == {"default_shots": 10, "seed_simulator": 7}
    assert mapped.ignored == {"experimental": {"x": 1}}


def test_estimator_shots_become_precision_and_the_legacy_seed_seeds():
    mapped = estimator_options({"default_shots": 400, "seed_estimator": 3})
    assert mapped.primitive == {"default_precision": 0.05, "seed_simulator": 3}
    assert mapped.ignored == {}


@pytest.mark.parametrize("options, trex, zne, gates, direct", [
    ({}, True, False, False, False),  # IBM's default: level 1, TREX with measure twirling
    ({"resilience_level": 0}, False, False, False, True),
    ({"resilience_level": 1}, True, False, False, False),
    ({"resilience_level": 2}, True, True, True, False),
    ({"resilience_level": 0, "resilience": {"zne_mitigation": True}}, False, True, False, False),
    ({"resilience_level": 2, "resilience": {"measure_mitigation": False}}, False, True, True,
     False),
])
def test_resilience_levels_resolve_as_ibm_documents(options, trex, zne, gates, direct):
    plan = estimator_plan(options)
    resilience = plan.finalized.resilience
    assert (resilience.measure_mitigation, resilience.zne_mitigation) == (trex, zne)
    assert plan.finalized.twirling.enable_gates is gates
    assert plan.direct is direct


def test_legacy_defaults_win_where_the_two_documentations_differ():
    plan = estimator_plan({"resilience": {"pec_mitigation": True,
                                          "layer_noise_learning": {"num_randomizations": 4}}})
    assert plan.client.resilience.measure_noise_learning.num_randomizations == 32
    assert plan.layer_learning == {"max_layers_to_learn": 4, "shots_per_randomization": 128,
                                   "num_randomizations": 4,
                                   "layer_pair_depths": [0, 1, 2, 4, 16, 32]}
    assert plan.needs_layer_noise and not plan.direct
    assert plan.finalized.twirling.enable_gates is True  # PEC twirls gates


def test_options_a_simulator_cannot_honour_become_warnings():
    plan = estimator_plan({"resilience_level": 0, "twirling": {"enable_measure": False},
                           "resilience": {"measure_mitigation": True},
                           "execution": {"init_qubits": False, "rep_delay": 0.0002}})
    text = " ".join(plan.warnings)
    assert "execution.init_qubits=False" in text and "execution.rep_delay=0.0002" in text
    assert "twirling.enable_measure=False" in text  # TREX needs it: the client overrides
    assert sampler_plan({"twirling": {"enable_gates": True}}).finalized.twirling.enable_gates
    plan = estimator_plan({"resilience": {"pec_mitigation": True, "layer_noise_model": []}})
    assert "resilience.layer_noise_model is not used" in " ".join(plan.warnings)


@pytest.mark.parametrize("options, named", [
    ({"resilience_level": 3}, "resilience_level"),
    ({"resilience": {"zne_mitigation": True, "pec_mitigation": True}}, "pec_mitigation"),
    ({"resilience_level": 2, "resilience": {"pec_mitigation": True}}, "pec_mitigation"),
    ({"resilience": {"zne_mitigation": True, "zne": {"extrapolator": "double_exponential"}}},
     "resilience.zne"),
    ({"resilience": {"zne": {"noise_factors": [0.5, 1]}}}, "resilience.zne.noise_factors"),
    ({"resilience": {"zne": {"extrapolator": []}}}, "resilience.zne"),
    ({"resilience": {"zne": {"amplifier": "magic"}}}, "resilience.zne.amplifier"),
    ({"resilience": {"pec": {"noise_gain": -1}}}, "resilience.pec.noise_gain"),
    ({"resilience": {"pec": {"max_overhead": 0}}}, "resilience.pec.max_overhead"),
    ({"resilience": {"layer_noise_learning": {"layer_pair_depths": [-1]}}},
     "layer_noise_learning"),
    ({"resilience_level": 0, "resilience": {"measure_noise_learning": {
        "num_randomizations": 4}}}, "measure_noise_learning"),
    ({"twirling": {"strategy": "some"}}, "twirling.strategy"),
    ({"twirling": {"num_randomizations": 0}}, "twirling.num_randomizations"),
    ({"dynamical_decoupling": {"sequence_type": "XZ"}}, "dynamical_decoupling.sequence_type"),
    ({"dynamical_decoupling": {"scheduling_method": "soon"}},
     "dynamical_decoupling.scheduling_method"),
])
def test_invalid_estimator_options_are_refused_naming_the_option(options, named):
    with pytest.raises(InvalidInput, match=named.replace(".", r"\.")):
        check_options("estimator", options)


@pytest.mark.parametrize("options, named", [
    ({"twirling": {"enable_gates": "often"}}, "twirling.enable_gates"),
    ({"twirling": {"shots_per_randomization": 0}}, "twirling.shots_per_randomization"),
    ({"dynamical_decoupling": {"extra_slack_distribution": "ends"}},
     "dynamical_decoupling.extra_slack_distribution"),
    ({"execution": {"rep_delay": -1}}, "execution.rep_delay"),
    ({"execution": {"rep_delay": 0.01}}, "execution.rep_delay"),  # beyond manila's 500 µs
])
def test_invalid_sampler_options_are_refused_naming_the_option(options, named):
    configuration = FakeManilaV2().configuration().to_dict()
    with pytest.raises(InvalidInput, match=named.replace(".", r"\.")):
        check_options("sampler", options, configuration)


def test_a_bad_option_is_a_400_at_submission(client):
    backend = FakeManilaV2()
    circuit = isa(bell(measure=False), backend)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    params = wire({"pubs": [(circuit, observable)], "version": 2, "support_qiskit": True,
                   "options": {"resilience": {"zne": {"extrapolator": "cubic"}}}})
    answer = client.post("/jobs", json={"program_id": "estimator", "backend": "fake_manila",
                                        "params": params})
    assert answer.status_code == 400, answer.get_json()
    message = answer.get_json()["errors"][0]["message"]
    assert "params.options.resilience.zne.extrapolator" in message


def test_programs_are_prepared_on_the_jobs_qubits_and_run_at_their_places():
    """qubit_subset: a 5-qubit ISA Bell on qubits {a, b} is prepared on 2 qubits with the
    backend cut to a and b, then embedded back at a and b."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from samplomatic.quantum_program import CircuitItem, QuantumProgram

    from qrs.circuits import used_qubits
    from qrs.executors import qubit_subset

    backend = FakeManilaV2()
    circuit = isa(bell(measure=False), backend)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    pub = EstimatorPub.coerce((circuit, observable))
    subset = qubit_subset.active_qubits([pub])
    assert len(subset) == 2 and set(subset) == used_qubits(circuit)
    reduced = qubit_subset.restrict_pub(pub, subset)
    assert reduced.circuit.num_qubits == 2
    assert list(reduced.observables.tolist().keys()) == ["ZZ"]
    small = qubit_subset.restrict_backend(backend, subset)
    assert small.num_qubits == 2 and small.target.instruction_supported("cx", (0, 1)) \
        == backend.target.instruction_supported("cx", tuple(subset))
    assert small.target["sx"][(1,)].duration == backend.target["sx"][(subset[1],)].duration
    program = QuantumProgram(shots=10, items=[CircuitItem(reduced.circuit)])
    qubit_subset.embed_program(program, subset, backend.num_qubits)
    embedded = program.items[0].circuit
    assert embedded.num_qubits == 5 and used_qubits(embedded) == set(subset)
    assert embedded.count_ops() == circuit.count_ops()
