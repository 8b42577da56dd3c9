"""The stock qiskit-ibm-runtime client against a real QRS server process.

Results are checked statistically: counts within a few binomial sigmas, expectation
values within a few reported standard deviations of the exact value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

from .conftest import connect
from .support.payloads import SIGMAS, assert_binomial, bell, entangled, isa
from .support.server import ServerProcess

def test_lists_every_fake_backend(service):
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    expected = {b.name for b in FakeProviderForBackendV2().backends()}
    served = {b.name for b in service.backends()}
    assert served == expected
    assert len(served) >= 60
    backend = service.backend("fake_manila")
    assert backend.num_qubits == 5
    assert backend.properties().t1(0) > 0


def test_noisy_bell_sampler(service):
    backend = service.backend("fake_manila")
    shots = 4000
    job = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots)
    counts = job.result()[0].data.meas.get_counts()
    assert sum(counts.values()) == shots
    correlated = (counts.get("00", 0) + counts.get("11", 0)) / shots
    assert 0.8 < correlated < 1.0, counts  # noise flips some outcomes, but not many
    assert_binomial(counts.get("00", 0), counts.get("00", 0) + counts.get("11", 0), 0.5)


def test_ideal_bell_sampler_has_only_correlated_outcomes(ideal_service):
    backend = ideal_service.backend("fake_manila")
    shots = 4000
    counts = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots).result()[0] \
        .data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert_binomial(counts["00"], shots, 0.5)


def test_estimator_zz_on_bell(ideal_service, service):
    for svc, exact_low, exact_high in ((ideal_service, 1.0, 1.0), (service, 0.8, 1.0)):
        backend = svc.backend("fake_manila")
        circuit = isa(bell(measure=False), backend)
        observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
        estimator = EstimatorV2(mode=backend)
        estimator.options.default_precision = 0.01
        data = estimator.run([(circuit, observable)]).result()[0].data
        ev, std = float(data.evs), float(data.stds)
        assert 0 <= std < 0.05  # ideal <ZZ> on a Bell state has no spread at all
        assert exact_low - SIGMAS * std - 1e-9 <= ev <= exact_high + SIGMAS * std + 1e-9, \
            (ev, std)


def test_parameter_sweeps_and_broadcasting(ideal_service):
    backend = ideal_service.backend("fake_manila")
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    sampled = circuit.copy()
    sampled.measure_all()
    angles = np.array([0.0, np.pi / 2, np.pi])
    shots = 2000
    result = SamplerV2(mode=backend).run([(isa(sampled, backend), angles, shots)]).result()
    bits = result[0].data.meas
    assert bits.shape == (3,)
    for index, angle in enumerate(angles):
        ones = bits[index].get_counts().get("1", 0)
        assert_binomial(ones, shots, math.sin(angle / 2) ** 2)

    # Estimator broadcasting: observables of shape (2, 1) against 3 parameter values → (2, 3)
    transpiled = isa(circuit, backend)
    observables = [[SparsePauliOp("Z").apply_layout(transpiled.layout)],
                   [SparsePauliOp("X").apply_layout(transpiled.layout)]]
    estimator = EstimatorV2(mode=backend)
    estimator.options.default_precision = 0.02
    data = estimator.run([(transpiled, observables, angles)]).result()[0].data
    assert data.evs.shape == (2, 3)
    exact = np.array([np.cos(angles), np.sin(angles)])
    assert np.all(np.abs(data.evs - exact) <= SIGMAS * data.stds + 1e-9), (data.evs, data.stds)


def test_several_pubs_in_one_job(service):
    backend = service.backend("fake_manila")
    flip = QuantumCircuit(1)
    flip.x(0)
    flip.measure_all()
    job = SamplerV2(mode=backend).run([(isa(bell(), backend), None, 500),
                                       (isa(flip, backend), None, 700)])
    result = job.result()
    assert len(result) == 2
    assert result[0].data.meas.num_shots == 500
    assert result[1].data.meas.num_shots == 700
    assert job.metrics()["num_circuits"] == 2
    flip_counts = result[1].data.meas.get_counts()
    assert flip_counts.get("1", 0) / 700 > 0.85  # readout error is a few percent


def test_failed_job_reports_a_readable_reason(service):
    backend = service.backend("fake_sherbrooke")  # the live server allows only 4 MiB
    wide = entangled(20)  # no plan fits 4 MiB: not Clifford, too entangled for an MPS
    job = SamplerV2(mode=backend).run([isa(wide, backend)], shots=10)
    with pytest.raises(RuntimeJobFailureError, match="QRS_MAX_MEMORY_MB"):
        job.result()
    assert job.status() == "ERROR"
    assert "MiB" in job.error_message()


@pytest.mark.system
def test_jobs_survive_a_restart(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        svc = connect(server)
        backend = svc.backend("fake_manila")
        job = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=321)
        counts = job.result()[0].data.meas.get_counts()
        server.stop()
        server.start()
        again = connect(server).job(job.job_id())
        assert again.status() == "DONE"
        assert again.result()[0].data.meas.get_counts() == counts
        assert again.primitive_id == "sampler"
    finally:
        server.stop()
