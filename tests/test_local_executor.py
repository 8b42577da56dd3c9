"""LocalExecutor on real Aer: cut-down noise models, batches, memory refusal."""

from __future__ import annotations

import math

import pytest
from qiskit import QuantumCircuit

from qrs.config import Config
from qrs.executors.base import JobRefused
from qrs.executors.local import LocalExecutor
from qrs.executors.noise import restrict_noise_model
from qrs.metadata import BackendMetadataProvider

from .support.payloads import bell, entangled, isa


@pytest.fixture(scope="module")
def metadata():
    return BackendMetadataProvider()


@pytest.fixture(scope="module")
def executor(metadata, tmp_path_factory):
    executor = LocalExecutor()
    executor.setup(Config(data_dir=str(tmp_path_factory.mktemp("d")), max_memory_mb=4),
                   metadata)
    return executor


def isa_bell(metadata):
    return isa(bell(), metadata.get_backend("fake_manila"))


def correlated(counts: dict) -> int:
    return counts.get("00", 0) + counts.get("11", 0)


def test_cut_down_compact_noise_model_gives_the_same_statistics(executor, metadata):
    sim = executor.simulator("fake_manila")
    full = sim.options.noise_model
    circuit = isa_bell(metadata)
    sub = restrict_noise_model(full, {0, 1})
    assert len(sub._local_quantum_errors["cx"]) < len(full._local_quantum_errors["cx"])
    assert len(full._local_quantum_errors["cx"][(0, 1)].circuits) > 100  # a long mixture...
    assert len(sub._local_quantum_errors["cx"][(0, 1)].circuits) == 1  # ...now one Kraus set
    assert sub.to_dict(serializable=True) is sub.to_dict(serializable=True)  # built once
    shots = 20_000
    a = correlated(sim.run(circuit, shots=shots, seed_simulator=1).result().get_counts())
    b = correlated(sim.run(circuit, shots=shots, noise_model=sub, seed_simulator=2)
                   .result().get_counts())
    p = (a + b) / (2 * shots)
    sigma = math.sqrt(2 * p * (1 - p) / shots)
    assert abs(a / shots - b / shots) < 5 * sigma, (a, b)
    assert p < 0.99  # noise is really there


def test_batch_returns_each_job_its_own_shots_and_isolates_failures(executor, metadata):
    circuit = isa_bell(metadata)
    too_wide = isa(entangled(20), metadata.get_backend("fake_kolkata"))
    jobs = [([(circuit, None, 300)], {}), ([(circuit, None, 500)], {}),
            ([(too_wide, None, 10)], {}), ([(circuit, None, 200)], {"default_shots": 7})]
    results = executor.execute_sampler_batch(jobs, "fake_manila")
    assert [r[0].data.meas.num_shots for i, r in enumerate(results) if i != 2] == [300, 500, 200]
    assert isinstance(results[2], JobRefused) and "QRS_MAX_MEMORY_MB" in str(results[2])
    for index in (0, 1):
        counts = results[index][0].data.meas.get_counts()
        assert correlated(counts) / sum(counts.values()) > 0.8


def test_a_mitigated_job_obeys_the_shot_limit(metadata, tmp_path):
    """ZNE runs three noise factors plus a TREX calibration: the programs it builds are
    checked against QRS_MAX_SHOTS like any executor job."""
    from qiskit.quantum_info import SparsePauliOp

    from qrs.errors import LimitExceeded

    executor = LocalExecutor()
    executor.setup(Config(data_dir=str(tmp_path / "d"), max_shots=5_000), metadata)
    circuit = isa(bell(measure=False), metadata.get_backend("fake_manila"))
    pub = (circuit, SparsePauliOp("ZZ").apply_layout(circuit.layout), None, 0.02)
    assert executor.execute_estimator([pub], {"resilience_level": 0}, "fake_manila")
    with pytest.raises(LimitExceeded, match="QRS_MAX_SHOTS"):
        executor.execute_estimator([pub], {"resilience_level": 2}, "fake_manila")


def test_cut_down_model_relaxes_delays_like_aers_own_pass(executor, metadata):
    """Memoized relaxation errors and the growing model Aer copies into give the statistics
    of Aer's unmodified pass on the full model, run after run."""
    sim = executor.simulator("fake_manila")
    full = sim.options.noise_model
    sub = restrict_noise_model(full, {0})
    idle = QuantumCircuit(5, 1)
    idle.x(0)
    idle.delay(40_000, 0, unit="dt")  # ~9 us
    idle.delay(80_000, 0, unit="dt")
    idle.measure(0, 0)
    shots = 20_000
    reference = sim.run(idle, shots=shots, seed_simulator=3).result().get_counts().get("1", 0)
    for seed in (4, 5):  # the second run reuses the errors the first one added
        ours = sim.run(idle, shots=shots, noise_model=sub, seed_simulator=seed) \
            .result().get_counts().get("1", 0)
        p = (reference + ours) / (2 * shots)
        sigma = math.sqrt(2 * p * (1 - p) / shots)
        assert abs(reference - ours) / shots < 5 * sigma, (reference, ours)
    assert reference / shots < 0.95  # the delays really relaxed |1>
    grown = sub.__deepcopy__({})
    assert grown is sub.__deepcopy__({})  # Aer's copy is one shared, growing model
    assert len(grown._default_quantum_errors) == 2  # one error per (qubit, duration)
