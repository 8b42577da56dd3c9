"""LocalExecutor on real Aer: cut-down noise models, batches, memory refusal."""

from __future__ import annotations

import math

import pytest

from qrs.config import Config
from qrs.executors.base import JobRefused
from qrs.executors.local import LocalExecutor
from qrs.executors.noise import restrict_noise_model
from qrs.metadata import BackendMetadataProvider

from .helpers import bell, entangled, isa


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
