"""The simulation planner and pub splitting on real Aer, in-process (no HTTP).

What each plan is chosen for, that parts and chunks merge back into the shapes an unsplit
run has, that a fixed seed reproduces a split pub exactly, and that factored Estimator
observables equal the exact values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import Chi, SparsePauliOp
from qiskit_aer.noise import PauliError, depolarizing_error, thermal_relaxation_error

from qrs import joblog
from qrs.config import Config
from qrs.executors.components import find_parts
from qrs.executors.local import LocalExecutor
from qrs.executors.noise import pauli_twirl, stabilizer_compatible
from qrs.metadata import BackendMetadataProvider

from .support.payloads import SIGMAS, bell, ghz, isa


@pytest.fixture(scope="module")
def metadata() -> BackendMetadataProvider:
    return BackendMetadataProvider()


def executor_for(metadata, **settings) -> LocalExecutor:
    executor = LocalExecutor()
    executor.setup(Config(executor_threads=1, **settings), metadata)
    return executor


def plan(executor: LocalExecutor, backend: str, circuit, shots: int = 1000, twirled=False):
    model = executor.job_noise_model(backend, {})
    pub = SamplerPub.coerce((circuit, None, shots))
    return executor.plan("sampler", 0, pub, executor.noise_facts(model, twirled))


def test_a_measured_bell_on_127_qubits_is_one_pair_and_125_readouts(metadata):
    backend = metadata.get_backend("fake_sherbrooke")
    circuit = isa(bell(measure=False), backend)
    circuit.measure_all()
    parts = find_parts(circuit)
    active = [part for part in parts if not part.passive]
    assert len(active) == 1 and active[0].width == 2
    assert sum(part.width for part in parts if part.passive) == 125


def test_each_method_is_chosen_for_what_it_is_good_at(metadata):
    noisy = executor_for(metadata)
    # Small and noisy with many shots: the density matrix's cost does not grow with shots.
    assert plan(noisy, "fake_manila", isa(bell(), metadata.get_backend("fake_manila")),
                shots=4000).method == "density_matrix"
    # Wide, lightly entangled, not Clifford: matrix product state.
    kolkata = metadata.get_backend("fake_kolkata")
    wide = plan(noisy, "fake_kolkata", isa(ghz(24, angle=0.3), kolkata))
    assert wide.method.startswith("matrix_product_state")
    assert "bond dimension" in wide.parts[0].reason
    # Clifford without noise: stabilizer, at any width.
    ideal = executor_for(metadata, noise=False)
    assert plan(ideal, "fake_kolkata", isa(ghz(27), kolkata)).method == "stabilizer"
    # Clifford with relaxation noise: stabilizer only with the Pauli approximation opt-in
    # (or when the job twirls its gates), and the plan says which noise it runs with.
    circuit = isa(ghz(24), kolkata)
    exact = plan(noisy, "fake_kolkata", circuit)
    assert exact.method != "stabilizer"
    assert "QRS_NOISE_APPROXIMATION=pauli" in " ".join(
        e.note for e in exact.parts[0].considered if e.method == "stabilizer")
    pauli = plan(executor_for(metadata, noise_approximation="pauli"), "fake_kolkata", circuit)
    assert (pauli.method, pauli.parts[0].noise) == ("stabilizer", "pauli")
    by_twirl = executor_for(metadata, noise_approximation="twirled")
    twirled = plan(by_twirl, "fake_kolkata", circuit, twirled=True)
    assert (twirled.method, twirled.parts[0].noise) == ("stabilizer", "pauli")
    assert plan(by_twirl, "fake_kolkata", circuit).method != "stabilizer"
    assert plan(noisy, "fake_kolkata", circuit, twirled=True).method != "stabilizer"  # default


def test_pauli_twirl_keeps_the_pauli_error_rates():
    relaxation = thermal_relaxation_error(50e3, 90e3, 400)  # T2 > T1: a Kraus channel
    error = depolarizing_error(0.02, 1).compose(relaxation)
    assert not stabilizer_compatible(_model(error), [0])
    twirled = pauli_twirl(error)
    assert isinstance(twirled, PauliError)
    assert math.isclose(float(np.sum(twirled.probabilities)), 1.0)
    chi = np.real(np.diag(Chi(error.to_quantumchannel()).data)) / 2
    rates = dict(zip(twirled.paulis.to_labels(), twirled.probabilities))
    for label, weight in zip("IXYZ", chi):
        assert math.isclose(rates.get(label, 0.0), weight, abs_tol=1e-9)
    assert stabilizer_compatible(_model(thermal_relaxation_error(50e3, 40e3, 400)), [0])


def _model(error):
    from qiskit_aer.noise import NoiseModel

    model = NoiseModel()
    model.add_quantum_error(error, "sx", [0])
    return model


def _sweep() -> QuantumCircuit:
    theta = Parameter("theta")
    qc = QuantumCircuit(3)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.rz(0.4, 2)
    qc.sx(2)
    qc.measure_all()
    return qc


def test_a_split_pub_has_the_unsplit_shape_is_reproducible_and_agrees(metadata):
    backend = metadata.get_backend("fake_manila")
    circuit = isa(_sweep(), backend)
    angles = np.linspace(0, np.pi, 6).reshape(2, 3)
    pub = (circuit, angles, 3000)
    split = executor_for(metadata, split_tasks=3, split_min_seconds=0)
    whole = executor_for(metadata, split_tasks=1)
    lines: list[str] = []
    with joblog.bound(joblog.JobContext("t", sink=lines.append)):
        options = {"simulator": {"seed_simulator": 11}}
        first = split.execute_sampler([pub], options, "fake_manila")[0]
        again = split.execute_sampler([pub], options, "fake_manila")[0]
        reference = whole.execute_sampler([pub], options, "fake_manila")[0]
    # Two parts (the swept pair, and qubit 2 which no parameter touches: its 6 bindings' worth
    # of shots run as one, in 3 chunks), 3 tasks each.
    assert [part["tasks"] for part in first.metadata["simulation"]["parts"]] == [3, 3]
    assert reference.metadata["simulation"]["tasks"] == 2  # one per part
    assert first.data.meas.shape == reference.data.meas.shape == (2, 3)
    assert first.data.meas.num_shots == 3000
    assert np.array_equal(first.data.meas.array, again.data.meas.array)  # same seed, same bits
    assert any("3 tasks by bindings" in line for line in lines), lines
    ones = lambda bits, bit: bits.slice_bits([bit]).bitcount().astype(float)  # noqa: E731
    for bit in (0, 1, 2):  # each bit's P(1) per binding, split vs unsplit
        a, b = ones(first.data.meas, bit) / 3000, ones(reference.data.meas, bit) / 3000
        sigma = np.sqrt((a * (1 - a) + b * (1 - b)) / 3000) + 1e-3
        assert np.all(np.abs(a - b) <= SIGMAS * sigma), (bit, a, b)


def test_shot_chunks_of_a_noisy_trajectory_pub_merge_in_order(metadata):
    backend = metadata.get_backend("fake_kolkata")
    circuit = isa(ghz(12, angle=0.5), backend)
    split = executor_for(metadata, split_tasks=4, split_min_seconds=0,
                         simulation_method="statevector")
    with joblog.bound(joblog.JobContext("t", sink=lambda line: None)):
        result = split.execute_sampler([(circuit, None, 400)],
                                       {"simulator": {"seed_simulator": 3}}, "fake_kolkata")[0]
    assert result.metadata["simulation"]["parts"][0]["tasks"] == 4
    counts = result.data.meas.get_counts()
    assert sum(counts.values()) == 400
    extremes = counts.get("0" * 12, 0) + counts.get("1" * 12, 0)
    assert extremes > 0.3 * 400, counts  # a noisy 12-qubit GHZ: both ends still dominate


def test_estimator_observables_factor_over_independent_parts(metadata):
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(3)
    qc.ry(a, 0)
    qc.ry(b, 2)  # qubit 1 stays idle but is observed: its Z is exactly 1 without noise
    angles = np.array([[0.3, 1.1], [0.9, 2.0], [1.7, 0.4]])
    circuit = isa(qc, metadata.get_backend("fake_manila"))
    observables = [[SparsePauliOp.from_list([("ZIZ", 1.0), ("IIX", 0.5)])
                    .apply_layout(circuit.layout)],
                   [SparsePauliOp.from_list([("XZI", 1.0), ("IZI", -0.25)])
                    .apply_layout(circuit.layout)]]
    executor = executor_for(metadata, noise=False)
    lines: list[str] = []
    with joblog.bound(joblog.JobContext("t", sink=lines.append)):
        result = executor.execute_estimator([(circuit, observables, angles)],
                                            {"default_precision": 0.01, "resilience_level": 0},
                                            "fake_manila")[0]
    evs, stds = result.data.evs, result.data.stds
    assert evs.shape == (2, 3)
    alpha, beta = angles[:, 0], angles[:, 1]
    exact = np.array([np.cos(alpha) * np.cos(beta) + 0.5 * np.sin(alpha),
                      np.sin(beta) * 1.0 - 0.25])
    assert np.all(np.abs(evs - exact) <= SIGMAS * stds + 1e-9), (evs, exact, stds)
    assert result.metadata["simulation"]["method"]
    assert any("independent part" in line for line in lines), lines
    # The same pub unsplit (coerced once, as the client sends it) has the same shape.
    pub = EstimatorPub.coerce((circuit, observables, angles), 0.01)
    assert pub.shape == evs.shape


def test_every_method_samples_the_same_noisy_distribution(metadata):
    """Density matrix (exact), state-vector and MPS trajectories, whole and in 3 chunks, on
    parts renumbered or not: one distribution. (Aer's shot branching failed this.)"""
    backend = metadata.get_backend("fake_kolkata")
    circuit = isa(ghz(6, angle=0.4), backend)
    shots = 3000
    ends = {}
    for method in ("density_matrix", "statevector", "matrix_product_state"):
        for tasks in (1, 3):
            executor = executor_for(metadata, simulation_method=method, split_tasks=tasks,
                                    split_min_seconds=0)
            with joblog.bound(joblog.JobContext("t", sink=lambda line: None)):
                counts = executor.execute_sampler([(circuit, None, shots)], {},
                                                  "fake_kolkata")[0].data.meas.get_counts()
            ends[method, tasks] = np.array([counts.get("0" * 6, 0), counts.get("1" * 6, 0)])
    reference = ends["density_matrix", 1] / shots
    for key, found in ends.items():
        p = found / shots
        sigma = np.sqrt((p * (1 - p) + reference * (1 - reference)) / shots)
        assert np.all(np.abs(p - reference) <= SIGMAS * sigma + 1e-3), (key, p, reference)


def test_estimator_observables_split_by_measurement_basis(metadata):
    backend = metadata.get_backend("fake_manila")
    circuit = isa(ghz(3, measure=False), backend)
    labels = ["ZZI", "IZZ", "XXX", "YYX", "XIX", "ZIZ", "XYY"]  # 3 qubit-wise bases at least
    exact = {"ZZI": 1, "IZZ": 1, "ZIZ": 1, "XXX": 1, "YYX": -1, "XYY": -1, "XIX": 0}
    observables = [SparsePauliOp(label).apply_layout(circuit.layout) for label in labels]
    executor = executor_for(metadata, noise=False, split_tasks=3, split_min_seconds=0)
    lines: list[str] = []
    with joblog.bound(joblog.JobContext("t", sink=lines.append)):
        result = executor.execute_estimator([(circuit, observables)],
                                            {"default_precision": 0.02, "resilience_level": 0},
                                            "fake_manila")[0]
    assert result.metadata["simulation"]["parts"][0]["tasks"] == 3
    assert any("3 tasks by observables" in line for line in lines), lines
    evs, stds = result.data.evs, result.data.stds
    assert evs.shape == (7,)
    for label, value, std in zip(labels, evs, stds):
        assert abs(value - exact[label]) <= SIGMAS * std + 1e-9, (label, value, std)
