"""IBM's error suppression and mitigation in the legacy ``estimator`` and ``sampler``.

The stock client's legacy ``EstimatorV2``/``SamplerV2`` against the shared noisy server
(fake_manila). The reference circuit is the issue's: a Bell pair followed by five identity
pairs of cx (barriers keep the transpiler from cancelling them), so the ideal <ZZ> is 1.0
while the noisy value is about 0.8. Checks are statistical: within ``SIGMAS`` of the
ideal, or two estimates within ``SIGMAS`` combined standard errors of each other.

A value that comes out of a fit — ZNE's and PEA's extrapolation, PEC with a quickly
learned noise model — is not judged by its own ``stds`` alone: those miss the model's
error (measured below), so its checks add a stated tolerance.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, SamplerV2
from qiskit_ibm_runtime.executor_estimator import Estimator as ClientSideEstimator
from qiskit_ibm_runtime.results import EstimatorPubResult

from .support.payloads import SIGMAS, assert_same_rate, bell, isa

warnings.filterwarnings("ignore", category=DeprecationWarning)

#: 2,500 shots per configuration: ZNE's standard error is then about 0.02.
PRECISION = 0.02
#: How far an extrapolated (ZNE) value may land from the ideal. Measured at PRECISION:
#: level 2 gave 0.947..1.028 over 16 runs (legacy and client-side alike, spread 0.022),
#: while the client's fit reported stds of 0.002..0.05 for them (an exponential fitted
#: through three points has one degree of freedom left), so the std is not the error.
ZNE_TOLERANCE = 0.1
#: PEC's std is its sampling error; a noise model learned with QUICK_LEARNING adds its own
#: (6 runs: 0.983..1.053, spread 0.029, against stds of 0.015).
LEARNED_MODEL_TOLERANCE = 0.05
#: A cheap layer-noise learning for PEA/PEC (IBM's defaults take ~30 s per layer here).
QUICK_LEARNING = {"num_randomizations": 8, "shots_per_randomization": 64,
                  "layer_pair_depths": [0, 1, 2, 4]}


def identity_pairs(backend, pairs: int = 5) -> tuple[QuantumCircuit, SparsePauliOp]:
    """The issue's circuit and <ZZ> on its two physical qubits."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    for _ in range(pairs):
        circuit.barrier()
        circuit.cx(0, 1)
        circuit.barrier()
        circuit.cx(0, 1)
    circuit = isa(circuit, backend)
    return circuit, SparsePauliOp("ZZ").apply_layout(circuit.layout)


def estimate(backend, pubs, options: dict, precision: float = PRECISION):
    """One legacy EstimatorV2 job; its result and job."""
    job = EstimatorV2(mode=backend, options=options).run(pubs, precision=precision)
    return job.result(), job


def ev_std(pub_result) -> tuple[float, float]:
    return float(pub_result.data.evs), float(pub_result.data.stds)


@pytest.fixture(scope="module")
def backend(service):
    return service.backend("fake_manila")


@pytest.fixture(scope="module")
def levels(backend):
    """The issue's table, legacy column: results by option set."""
    circuit, observable = identity_pairs(backend)
    cases = {"0": {"resilience_level": 0}, "unset": {}, "1": {"resilience_level": 1},
             "2": {"resilience_level": 2}, "zne": {"resilience": {"zne_mitigation": True}}}
    return {name: estimate(backend, [(circuit, observable)], options)[0]
            for name, options in cases.items()}


def test_level_2_lands_on_the_ideal_and_clearly_above_level_0(levels):
    ev0, std0 = ev_std(levels["0"][0])
    ev2, std2 = ev_std(levels["2"][0])
    assert 0.6 < ev0 < 0.95  # the noise is real
    assert abs(ev2 - 1.0) <= ZNE_TOLERANCE, (ev2, std2)
    assert abs(ev2 - 1.0) < abs(ev0 - 1.0) / 2, (ev0, ev2)  # ZNE removes most of the bias
    zne = levels["zne"][0]
    assert hasattr(zne.data, "evs_extrapolated") and zne.data.evs_noise_factors.shape == (3,)


def test_unset_level_is_ibms_default_trex(levels):
    for name in ("unset", "1"):
        metadata = levels[name].metadata
        assert metadata["resilience"]["measure_mitigation"] is True
        assert metadata["twirling"]["enable_measure"] is True
        assert metadata["resilience_level"] == 1
    unset, one = ev_std(levels["unset"][0]), ev_std(levels["1"][0])
    assert abs(unset[0] - one[0]) <= SIGMAS * math.hypot(unset[1], one[1])
    assert levels["0"].metadata["resilience"]["measure_mitigation"] is False


def test_level_1_beats_level_0_when_the_error_is_readout(backend):
    circuit = isa(bell(measure=False), backend)  # one cx: readout dominates the error
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    # Precision 0.005: the readout error (~6 % on <ZZ>) is then > 8 sigma of the difference.
    ev0, std0 = ev_std(estimate(backend, [(circuit, observable)], {"resilience_level": 0},
                                precision=0.005)[0][0])
    ev1, std1 = ev_std(estimate(backend, [(circuit, observable)], {"resilience_level": 1},
                                precision=0.005)[0][0])
    assert ev1 - ev0 > SIGMAS * math.hypot(std0, std1), (ev0, ev1)
    assert abs(ev1 - 1.0) < abs(ev0 - 1.0)


def client_side(backend, options: dict):
    """The client-side Estimator's result for the issue's circuit, at PRECISION."""
    circuit, observable = identity_pairs(backend)
    return ClientSideEstimator(mode=backend, options=options).run(
        [(circuit, observable)], precision=PRECISION).result()[0]


@pytest.mark.parametrize("name, options", [
    ("0", {"resilience_level": 0}), ("1", {"resilience_level": 1})])
def test_legacy_and_client_side_paths_agree(backend, levels, name, options):
    (ev_a, std_a), (ev_b, std_b) = ev_std(levels[name][0]), ev_std(client_side(backend, options))
    assert abs(ev_a - ev_b) <= SIGMAS * math.hypot(std_a, std_b), (ev_a, std_a, ev_b, std_b)


def test_legacy_and_client_side_zne_paths_agree(backend, levels):
    # Both measure the same amplified circuits: those estimates agree statistically; each
    # extrapolation then lands on the ideal (ZNE_TOLERANCE says why not closer).
    a, b = levels["2"][0].data, client_side(backend, {"resilience_level": 2}).data
    gap = np.abs(a.evs_noise_factors - b.evs_noise_factors)
    assert np.all(gap <= SIGMAS * np.hypot(a.stds_noise_factors, b.stds_noise_factors)), (
        a.evs_noise_factors, b.evs_noise_factors)
    for ev in (float(a.evs), float(b.evs)):
        assert abs(ev - 1.0) <= ZNE_TOLERANCE, (float(a.evs), float(b.evs))


def check_fields(pub_result, shape: tuple[int, ...], zne: bool, extrapolators: int = 2,
                 noise_factors: int = 3, points: int | None = None) -> None:
    """Every field IBM documents, as ndarrays of IBM's shapes (0-d for a shape-() pub)."""
    assert isinstance(pub_result, EstimatorPubResult)
    expected = {"evs": shape, "stds": shape}
    if zne:
        expected.update({name: (*shape, noise_factors) for name in (
            "evs_noise_factors", "stds_noise_factors", "ensemble_stds_noise_factors")})
        points = noise_factors + 1 if points is None else points  # [0, *noise_factors]
        expected.update({name: (*shape, extrapolators, points)
                         for name in ("evs_extrapolated", "stds_extrapolated")})
    else:
        expected["ensemble_standard_error"] = shape
    assert set(pub_result.data.keys()) == set(expected)
    for name, want in expected.items():
        value = getattr(pub_result.data, name)
        assert isinstance(value, np.ndarray) and value.shape == want, (name, type(value))
    assert pub_result.data.shape == shape


def shaped_pubs(backend) -> list[tuple]:
    """Pubs of shape (), (2,) and (2, 3) by broadcasting (2, 1) observables over 3 angles."""
    theta = Parameter("θ")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit = isa(circuit, backend)
    layout = circuit.layout

    def obs(label: str) -> SparsePauliOp:
        return SparsePauliOp(label).apply_layout(layout)

    return [(circuit, obs("ZZ"), [0.3]),
            (circuit, [obs("ZZ"), obs("ZI")], [0.3]),
            (circuit, [[obs("ZZ")], [obs("IZ")]], [[0.0], [1.0], [2.0]])]


@pytest.mark.parametrize("options, zne", [({"resilience_level": 0}, False),
                                          ({"resilience_level": 1}, False),
                                          ({"resilience_level": 2}, True)])
def test_every_field_has_ibms_shape(backend, options, zne):
    result, _ = estimate(backend, shaped_pubs(backend), options, precision=0.1)
    for pub_result, shape in zip(result, [(), (2,), (2, 3)]):
        check_fields(pub_result, shape, zne)
    if zne:
        for pub_result in result:
            settings = pub_result.metadata["resilience"]["zne"]
            assert settings["noise_factors"] == [1, 3, 5]
            assert settings["extrapolators"] == ["exponential", "linear"]
            if pub_result.data.shape:  # the client's plots index values; () has none
                pub_result.draw_zne_evs()
                pub_result.draw_zne_extrapolators()


def test_zne_options_shape_the_result(backend):
    circuit, observable = identity_pairs(backend, pairs=1)
    options = {"resilience": {"zne_mitigation": True, "zne": {
        "noise_factors": [1, 2, 3, 4], "extrapolator": ["double_exponential", "linear",
                                                        "polynomial_degree_2", "fallback"],
        "extrapolated_noise_factors": [0, 0.5], "amplifier": "gate_folding_back"}}}
    pub_result = estimate(backend, [(circuit, observable)], options, precision=0.05)[0][0]
    check_fields(pub_result, (), zne=True, extrapolators=4, noise_factors=4, points=2)
    assert pub_result.metadata["resilience"]["zne"]["noise_factors"] == [1, 2, 3, 4]


def test_pec_lands_on_the_ideal(backend):
    circuit = isa(bell(measure=False), backend)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    options = {"resilience": {"pec_mitigation": True, "layer_noise_learning": QUICK_LEARNING}}
    result, job = estimate(backend, [(circuit, observable)], options, precision=0.03)
    pub_result = result[0]
    check_fields(pub_result, (), zne=False)
    ev, std = ev_std(pub_result)
    assert abs(ev - 1.0) <= SIGMAS * std + LEARNED_MODEL_TOLERANCE, (ev, std)
    assert pub_result.metadata["resilience"]["layer_noise"]["unique_mitigated_layers"] == 1
    assert pub_result.metadata["resilience"]["pec"]["num_randomizations_scaling"] >= 1
    assert result.metadata["resilience"]["pec_mitigation"] is True
    assert result.metadata["twirling"]["enable_gates"] is True  # PEC forces gate twirling
    assert "Learning the noise of 1 layer(s)" in job.logs()


def test_pea_runs_with_learned_layer_noise(backend):
    circuit, observable = identity_pairs(backend, pairs=1)
    options = {"resilience": {"zne_mitigation": True, "zne": {"amplifier": "pea"},
                              "layer_noise_learning": {**QUICK_LEARNING,
                                                       "layer_pair_depths": [0, 1, 2]}}}
    pub_result = estimate(backend, [(circuit, observable)], options, precision=0.05)[0][0]
    check_fields(pub_result, (), zne=True)
    ev, std = ev_std(pub_result)
    # PEA's noise-factor estimates vary widely with a quick learning (stds up to 0.3 here):
    # its extrapolation gets both tolerances.
    assert abs(ev - 1.0) <= SIGMAS * std + ZNE_TOLERANCE, (ev, std)


def test_unhonoured_options_are_named_in_the_log_and_the_metadata(backend):
    circuit, observable = identity_pairs(backend, pairs=0)
    options = {"resilience_level": 1, "execution": {"rep_delay": 0.0001, "init_qubits": False}}
    result, job = estimate(backend, [(circuit, observable)], options, precision=0.1)
    named = " ".join(result.metadata["warnings"])
    assert "execution.rep_delay" in named and "execution.init_qubits" in named
    assert "execution.rep_delay" in job.logs() and "execution.init_qubits" in job.logs()


def test_an_option_combination_ibm_refuses_is_refused_at_submission(backend):
    circuit, observable = identity_pairs(backend, pairs=0)
    options = {"resilience_level": 2, "resilience": {"pec_mitigation": True}}
    with pytest.raises(Exception, match="pec_mitigation"):  # the client's submission error
        EstimatorV2(mode=backend, options=options).run([(circuit, observable)])


def counts_of(result) -> dict[str, int]:
    return result[0].data.meas.get_counts()


def test_twirled_sampler_counts_agree_with_untwirled(backend):
    circuit = isa(bell(), backend)
    shots = 4000
    plain = SamplerV2(mode=backend).run([circuit], shots=shots).result()
    twirling = {"twirling": {"enable_gates": True, "enable_measure": True,
                             "num_randomizations": 20}}
    twirled = SamplerV2(mode=backend, options=twirling).run([circuit], shots=shots).result()
    assert twirled[0].data.meas.num_shots == shots  # the pub's shots, as IBM returns them
    assert twirled[0].metadata["num_randomizations"] == 20
    assert twirled.metadata["twirling"]["enable_gates"] is True
    a, b = counts_of(plain), counts_of(twirled)
    for outcome in ("00", "01", "10", "11"):
        assert_same_rate(a.get(outcome, 0), shots, b.get(outcome, 0), shots)


def test_sampler_with_dynamical_decoupling(backend):
    circuit = isa(bell(), backend)
    options = {"dynamical_decoupling": {"enable": True, "sequence_type": "XY4",
                                        "scheduling_method": "asap"}}
    result = SamplerV2(mode=backend, options=options).run([circuit], shots=500).result()
    counts = counts_of(result)
    assert sum(counts.values()) == 500 and counts.get("00", 0) + counts.get("11", 0) > 400
    assert result.metadata["dynamical_decoupling"]["sequence_type"] == "XY4"
