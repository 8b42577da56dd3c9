"""The device noise model as calibrated, through the stock client on a real noisy server.

* Readout errors are the calibration's asymmetric pair per qubit, not Aer's symmetric mean.
* Idle time costs what T1 and T2 say: a ``delay`` gets thermal relaxation.
* Dynamical decoupling therefore changes results: an idle |1> decays half as fast when
  X pulses keep swapping it with |0>. Relaxation is Markovian (the calibration has no
  low-frequency noise), so DD cannot refocus a superposition's dephasing: that result is
  checked to stay the same, as documented in docs/noise.md.
"""

from __future__ import annotations

import math

import numpy as np
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import SamplerV2
from qiskit_ibm_runtime.executor.dynamical_decoupling import generate_dd_pass_manager
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.options_models import DynamicalDecouplingOptions

from .support.payloads import SIGMAS, assert_binomial

SHOTS = 4000


def calibrated_readout(backend, qubit: int) -> tuple[float, float]:
    """(P(1|0), P(0|1)) of ``qubit`` from the backend's calibration as the client sees it."""
    props = backend.properties().qubit_property(qubit)
    return props["prob_meas1_prep0"][0], props["prob_meas0_prep1"][0]


def ones(result, register: str = "c") -> np.ndarray:
    """Per-bit frequency of 1 in a pub result."""
    bits = getattr(result.data, register).to_bool_array(order="little")
    return bits.mean(axis=0)


def test_readout_errors_are_the_calibrated_asymmetric_ones(service):
    backend = service.backend("fake_manila")
    n, shots = backend.num_qubits, 100_000
    zeros = QuantumCircuit(n, n)
    zeros.measure(range(n), range(n))
    excited = QuantumCircuit(n, n)
    excited.x(range(n))
    excited.measure(range(n), range(n))
    result = SamplerV2(mode=backend).run([(zeros, None, shots), (excited, None, shots)]).result()
    from_zero, from_one = ones(result[0]), 1 - ones(result[1])
    for qubit in range(n):
        p10, p01 = calibrated_readout(backend, qubit)
        assert_binomial(round(from_zero[qubit] * shots), shots, p10)
        # |1> is prepared by an x gate, whose own error (≤ its calibrated error) adds to it
        x_error = backend.target["x"][(qubit,)].error
        sigma = math.sqrt(p01 * (1 - p01) / shots)
        assert abs(from_one[qubit] - p01) <= SIGMAS * sigma + x_error, (qubit, from_one, p01)
    p10, p01 = calibrated_readout(backend, 0)
    assert p01 - p10 > 0.03  # fake_manila's qubit 0 really is asymmetric: 1.6 % vs 5.5 %
    assert abs(from_zero[0] - from_one[0]) > 0.03, (from_zero[0], from_one[0])


def _delay_dt(backend, seconds: float) -> int:
    """A delay of about ``seconds`` in dt, on the backend's 16-sample grid."""
    return int(seconds / backend.dt) // 16 * 16


def _idle(backend, tau_dt: int, superposition: bool) -> QuantumCircuit:
    """|1> (or |+>, closed by a second H) idling ``tau_dt`` on qubit 0: ISA as written."""
    qc = QuantumCircuit(backend.num_qubits, 1)
    if superposition:
        qc.rz(math.pi / 2, 0)
        qc.sx(0)
        qc.rz(math.pi / 2, 0)
    else:
        qc.x(0)
    qc.delay(tau_dt, 0, unit="dt")
    if superposition:
        qc.rz(math.pi / 2, 0)
        qc.sx(0)
        qc.rz(math.pi / 2, 0)
    qc.measure(0, 0)
    return qc


def _with_dd(backend, circuit: QuantumCircuit, sequence: str) -> QuantumCircuit:
    """The client's own DD pass manager (what its Sampler applies) on ``circuit``."""
    options = DynamicalDecouplingOptions(enable=True, sequence_type=sequence)
    return generate_dd_pass_manager(backend, options).run(circuit)


def test_idle_qubits_relax_as_t1_and_t2_say(service):
    backend = service.backend("fake_manila")
    qubit = backend.target.qubit_properties[0]
    t1, t2 = qubit.t1, min(qubit.t2, 2 * qubit.t1)
    p10, p01 = calibrated_readout(backend, 0)
    tau = _delay_dt(backend, 0.4 * t1)
    seconds = tau * backend.dt
    result = SamplerV2(mode=backend).run(
        [(_idle(backend, tau, False), None, SHOTS), (_idle(backend, tau, True), None, SHOTS)]
    ).result()
    slack = 2e-3  # the one or two gates around the idle
    for index, p_one in ((0, math.exp(-seconds / t1)), (1, (1 - math.exp(-seconds / t2)) / 2)):
        expected = p_one * (1 - p01) + (1 - p_one) * p10
        got = ones(result[index])[0]
        sigma = math.sqrt(expected * (1 - expected) / SHOTS)
        assert abs(got - expected) <= SIGMAS * sigma + slack, (index, got, expected)


def test_dynamical_decoupling_protects_an_idle_excited_qubit(service):
    backend = service.backend("fake_manila")
    tau = _delay_dt(backend, backend.target.qubit_properties[0].t1)
    bare = _idle(backend, tau, False)
    xy4 = _with_dd(backend, bare, "XY4")
    assert xy4.count_ops().get("x", 0) >= 5  # the preparation and four DD pulses
    legacy = SamplerV2(mode=backend).run([(bare, None, SHOTS), (xy4, None, SHOTS)]).result()

    sampler = Sampler(mode=backend)  # the client-side Sampler inserts XX itself
    sampler.options.dynamical_decoupling.enable = True
    sampler.options.dynamical_decoupling.sequence_type = "XX"
    client = sampler.run([(bare, None, SHOTS)]).result()

    without = ones(legacy[0])[0]
    for label, with_dd in (("XY4", ones(legacy[1])[0]), ("XX", ones(client[0])[0])):
        pooled = (without + with_dd) / 2
        sigma = math.sqrt(2 * pooled * (1 - pooled) / SHOTS)
        # |1> spends half the idle as |0>: e^{-1} ≈ 0.37 of the shots survive without DD,
        # about e^{-1/2} ≈ 0.6 with it
        assert with_dd - without > SIGMAS * sigma, (label, without, with_dd)
        assert with_dd > 0.5 > without, (label, without, with_dd)


def test_dynamical_decoupling_cannot_refocus_markovian_dephasing(service):
    backend = service.backend("fake_manila")
    tau = _delay_dt(backend, 0.5 * backend.target.qubit_properties[0].t2)
    bare = _idle(backend, tau, True)
    result = SamplerV2(mode=backend).run(
        [(bare, None, SHOTS), (_with_dd(backend, bare, "XY4"), None, SHOTS)]).result()
    without, with_dd = ones(result[0])[0], ones(result[1])[0]
    pooled = (without + with_dd) / 2
    sigma = math.sqrt(2 * pooled * (1 - pooled) / SHOTS)
    x_errors = 4 * backend.target["x"][(0,)].error  # the DD pulses' own errors
    assert abs(with_dd - without) <= SIGMAS * sigma + x_errors, (without, with_dd)
    assert without > 0.15  # the superposition did dephase
