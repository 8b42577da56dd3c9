"""``meas_type="kerneled"`` / ``"avg_kerneled"`` and ``meas_level="both"``: emulated IQ data.

Through the stock client on a real noisy server: IBM's shapes for the legacy ``SamplerV2``,
the client-side ``Sampler`` and a hand-built ``QuantumProgram``; the discriminator
``I > 0`` (``qrs.executors.iq.classify``) misreads at the calibrated asymmetric rates, and
shot averages sit where the blob centres and those rates put them.
"""

from __future__ import annotations

import math

import numpy as np
import requests
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ibm_runtime import Executor, QuantumProgram, SamplerV2
from qiskit_ibm_runtime.executor_sampler import Sampler
from samplomatic.quantum_program import CircuitItem

from qrs.executors.iq import CENTRE_0, CENTRE_1, blob_width, classify

from .support.payloads import SIGMAS, assert_binomial, sampler_params

SHOTS = 20_000


def _prepared(backend, excited: bool) -> QuantumCircuit:
    n = backend.num_qubits
    qc = QuantumCircuit(n, n)
    if excited:
        qc.x(range(n))
    qc.measure(range(n), range(n))
    return qc


def _readout(backend, qubit: int) -> tuple[float, float]:
    props = backend.properties().qubit_property(qubit)
    return props["prob_meas1_prep0"][0], props["prob_meas0_prep1"][0]


def test_kerneled_points_misread_at_the_calibrated_rates(service):
    backend = service.backend("fake_manila")
    n = backend.num_qubits
    sampler = SamplerV2(mode=backend)
    sampler.options.execution.meas_type = "kerneled"
    sampler.options.simulator.seed_simulator = 7
    result = sampler.run([(_prepared(backend, False), None, SHOTS),
                          (_prepared(backend, True), None, SHOTS)]).result()
    zeros, ones = result[0].data.c, result[1].data.c
    assert isinstance(zeros, np.ndarray) and np.iscomplexobj(zeros)
    assert zeros.shape == ones.shape == (SHOTS, n)
    for qubit in range(n):
        p10, p01 = _readout(backend, qubit)
        assert_binomial(int(classify(zeros[:, qubit]).sum()), SHOTS, p10)
        x_error = backend.target["x"][(qubit,)].error
        misread = float((~classify(ones[:, qubit])).mean())
        assert abs(misread - p01) <= SIGMAS * math.sqrt(p01 * (1 - p01) / SHOTS) + x_error
        # the |0> blob has the width that makes its misread rate p10
        spread = float(np.std(zeros[:, qubit].imag))
        assert abs(spread - blob_width(p10)) <= SIGMAS * blob_width(p10) / math.sqrt(SHOTS)


def test_avg_kerneled_has_ibm_shape_and_the_expected_mean(service):
    backend = service.backend("fake_manila")
    theta = Parameter("t")
    qc = QuantumCircuit(2, 2)
    qc.rx(theta, 0)
    qc.measure([0, 1], [0, 1])
    from .support.payloads import isa

    circuit = isa(qc, backend)
    angles = np.array([[0.0], [math.pi], [math.pi / 2]])
    sampler = SamplerV2(mode=backend)
    sampler.options.execution.meas_type = "avg_kerneled"
    data = sampler.run([(circuit, angles, SHOTS)]).result()[0].data
    registers = list(data.keys())
    points = data[registers[0]]
    assert points.shape == (3, circuit.num_clbits) and np.iscomplexobj(points)
    # qubit 0: |0>, |1>, then half and half; qubit 1 idles in |0>
    width = blob_width(max(_readout(backend, q)[k] for q in range(5) for k in (0, 1)))
    tolerance = SIGMAS * width / math.sqrt(SHOTS) + 0.02  # + the rx gate's own error
    assert abs(points[0, 0].real - CENTRE_0) <= tolerance
    assert abs(points[1, 0].real - CENTRE_1) <= tolerance + 2 * 0.01  # |1> decays a little
    assert abs(points[2, 0].real - (CENTRE_0 + CENTRE_1) / 2) <= tolerance + 0.02
    assert np.allclose(points[:, 1].real, CENTRE_0, atol=tolerance)


def test_client_side_sampler_and_programs_get_iq_data(service):
    backend = service.backend("fake_manila")
    circuit = _prepared(backend, True)
    for meas_type, shape in (("kerneled", (1000, 5)), ("avg_kerneled", (5,))):
        sampler = Sampler(mode=backend)
        sampler.options.execution.meas_type = meas_type
        data = sampler.run([(circuit, None, 1000)]).result()[0].data
        assert data.c.shape == shape and np.iscomplexobj(data.c), (meas_type, data.c.shape)
        assert np.mean(data.c.real) > 0.5  # excited: the |1> blob

    program = QuantumProgram(shots=300, items=[CircuitItem(circuit)], meas_level="both")
    item = Executor(mode=backend).run(program).result()[0]
    assert item["c"].shape == (300, 5) and item["c"].dtype == bool
    assert item["c_iq"].shape == (300, 5) and np.iscomplexobj(item["c_iq"])
    assert np.array_equal(item["c"], classify(item["c_iq"]))  # the bits are the points read


def test_an_unknown_meas_type_is_refused(live_server):
    params = sampler_params(options={"execution": {"meas_type": "raw_traces"}})
    response = requests.post(live_server.url + "/api/v1/jobs", timeout=30,
                             headers={"Authorization": "Bearer x"},
                             json={"program_id": "sampler", "backend": "fake_manila",
                                   "params": params})
    assert response.status_code == 400, response.text
    assert "meas_type" in response.json()["errors"][0]["message"]
