"""The client's next-generation primitives (``program_id="executor"``) against a live server.

``executor_sampler.Sampler``, ``executor_estimator.Estimator`` and ``Executor`` with a
hand-built ``QuantumProgram``, all from the stock client. Noisy results are compared with
the client's own in-process reference (``QiskitRuntimeLocalService`` →
``run_quantum_program`` on the same fake backend) by two-sample tests; ideal results with
the exact answer.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import requests
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import Batch, Executor, QuantumProgram, Session
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from samplomatic import build
from samplomatic.quantum_program import CircuitItem, SamplexItem
from samplomatic.transpiler import generate_boxing_pass_manager

from .support.payloads import SIGMAS, assert_binomial, assert_same_rate, bell, isa

warnings.filterwarnings("ignore", category=DeprecationWarning)


def twirled(sampler: Sampler, on: bool) -> Sampler:
    sampler.options.twirling.enable_gates = on
    sampler.options.twirling.enable_measure = on
    return sampler


@pytest.mark.parametrize("twirling", [False, True])
def test_ideal_bell_has_only_correlated_outcomes(ideal_service, twirling):
    backend = ideal_service.backend("fake_manila")
    shots = 4096
    job = twirled(Sampler(mode=backend), twirling).run([isa(bell(), backend)], shots=shots)
    counts = job.result()[0].data.meas.get_counts()
    assert sum(counts.values()) == shots
    # with twirling the client undoes the measurement flips the server returned
    assert set(counts) == {"00", "11"}, counts
    assert_binomial(counts["00"], shots, 0.5)
    again = ideal_service.job(job.job_id()).result()  # retrieved later: same decoders
    assert again[0].data.meas.get_counts() == counts


@pytest.mark.parametrize("twirling", [False, True])
def test_noisy_bell_agrees_with_the_client_reference(service, twirling):
    backend = service.backend("fake_manila")
    shots = 4096
    circuit = isa(bell(), backend)
    ours = twirled(Sampler(mode=backend), twirling).run([circuit], shots=shots).result()
    reference = twirled(Sampler(mode=FakeManilaV2()), twirling).run([circuit], shots=shots) \
        .result()
    ours_counts = ours[0].data.meas.get_counts()
    ref_counts = reference[0].data.meas.get_counts()
    n_ours, n_ref = sum(ours_counts.values()), sum(ref_counts.values())
    assert 0.8 < (ours_counts.get("00", 0) + ours_counts.get("11", 0)) / n_ours < 1.0
    for outcome in ("00", "01", "10", "11"):
        assert_same_rate(ours_counts.get(outcome, 0), n_ours, ref_counts.get(outcome, 0), n_ref)


def test_estimator_zz_on_bell(ideal_service, service):
    for svc, noisy in ((ideal_service, False), (service, True)):
        backend = svc.backend("fake_manila")
        circuit = isa(bell(measure=False), backend)
        observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
        result = Estimator(mode=backend).run([(circuit, observable)], precision=0.02).result()
        ev, std = float(result[0].data.evs), float(result[0].data.stds)
        if not noisy:  # every shot agrees, so the spread is zero too
            assert ev == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)
            continue
        assert 0 < std < 0.05
        ref = Estimator(mode=FakeManilaV2()).run([(circuit, observable)], precision=0.02) \
            .result()[0].data
        ref_ev, ref_std = float(ref.evs), float(ref.stds)
        assert 0.7 < ev <= 1.0 + SIGMAS * std  # readout-mitigated: may touch 1
        assert abs(ev - ref_ev) <= SIGMAS * math.hypot(std, ref_std), (ev, std, ref_ev, ref_std)


def sweep_program(shots: int, backend) -> tuple[QuantumProgram, np.ndarray, np.ndarray]:
    """Three ISA items: a 1-D RY sweep, a 2-D (RY, RZ) grid, a twirled (samplex) RY sweep."""
    theta, phi = Parameter("θ"), Parameter("φ")
    ry = QuantumCircuit(1, 1)
    ry.ry(theta, 0)
    ry.measure(0, 0)
    thetas = np.linspace(0, np.pi, 5)

    grid = QuantumCircuit(2)
    grid.ry(theta, 0)
    grid.rz(phi, 0)
    grid.cx(0, 1)
    grid.measure_all()
    grid_values = np.stack(np.meshgrid(np.linspace(0, np.pi, 2), np.linspace(0, 1, 3),
                                       indexing="ij"), axis=-1)  # shape (2, 3, 2): θ, φ

    ry, grid = isa(ry, backend), isa(grid, backend)
    boxed = generate_boxing_pass_manager(enable_gates=True, enable_measures=True).run(ry)
    template, samplex = build(boxed)
    program = QuantumProgram(shots=shots, items=[
        CircuitItem(ry, circuit_arguments=thetas[:, None]),
        CircuitItem(grid, circuit_arguments=grid_values),
        SamplexItem(template, samplex, samplex_arguments={"parameter_values": thetas[:, None]},
                    shape=(4, 5)),
    ])
    return program, thetas, grid_values


def test_executor_runs_a_hand_built_program_with_sweeps(ideal_service):
    backend = ideal_service.backend("fake_manila")
    shots = 1000
    program, thetas, grid_values = sweep_program(shots, backend)
    result = Executor(backend).run(program).result()
    assert len(result) == 3

    ones = result[0]["c"]
    assert ones.shape == (5, shots, 1) and ones.dtype == bool
    for theta, column in zip(thetas, ones[..., 0]):
        assert_binomial(int(column.sum()), shots, math.sin(theta / 2) ** 2)

    meas = result[1]["meas"]
    assert meas.shape == (2, 3, shots, 2)
    assert np.array_equal(meas[..., 0], meas[..., 1])  # the CX copies qubit 0
    for i, j in np.ndindex(2, 3):
        assert_binomial(int(meas[i, j, :, 0].sum()), shots,
                        math.sin(grid_values[i, j, 0] / 2) ** 2)

    twirled_item = result[2]
    flips = twirled_item["measurement_flips.c"]
    raw = twirled_item["c"]
    assert raw.shape == (4, 5, shots, 1)
    corrected = raw ^ flips  # undo the measurement twirl the samplex drew
    assert flips.any() and not flips.all()  # the twirls really randomized
    for k, theta in enumerate(thetas):
        assert_binomial(int(corrected[:, k, :, 0].sum()), 4 * shots, math.sin(theta / 2) ** 2)


def test_dry_run_returns_shaped_random_data_without_simulating(ideal_service):
    backend = ideal_service.backend("fake_manila")
    shots = 200
    program, _, _ = sweep_program(shots, backend)
    job = Executor(backend).run(program, dry_run=True)
    assert job.backend().name == "mock_manila"
    result = job.result()
    assert result[0]["c"].shape == (5, shots, 1)
    assert result[1]["meas"].shape == (2, 3, shots, 2)
    assert result[2]["c"].shape == (4, 5, shots, 1)
    assert "measurement_flips.c" in result[2]
    # θ = 0 always reads 0 when simulated: random data reads 1 about half the time
    assert_binomial(int(result[0]["c"][0].sum()), shots, 0.5)
    assert "Dry run" in job.logs()

    counts = Sampler(mode=backend).run([isa(bell(), backend)], shots=400, dry_run=True) \
        .result()[0].data.meas.get_counts()
    assert sum(counts.values()) == 400 and len(counts) == 4

    circuit = isa(bell(measure=False), backend)
    observables = [SparsePauliOp(p).apply_layout(circuit.layout) for p in ("ZZ", "XX", "ZI")]
    data = Estimator(mode=backend).run([(circuit, observables)], dry_run=True).result()[0].data
    assert data.evs.shape == data.stds.shape == (3,)


def test_session_and_batch_modes(ideal_service):
    backend = ideal_service.backend("fake_manila")
    circuit = isa(bell(), backend)
    for mode_cls in (Session, Batch):
        with mode_cls(backend=backend) as mode:
            sampler = Sampler(mode=mode)
            jobs = [sampler.run([circuit], shots=500) for _ in range(2)]
            dry = sampler.run([circuit], shots=100, dry_run=True)
            for job in jobs:
                assert job.session_id == mode.session_id
                counts = job.result()[0].data.meas.get_counts()
                assert set(counts) == {"00", "11"}
            assert sum(dry.result()[0].data.meas.get_counts().values()) == 100


def test_options_are_honoured_or_logged(ideal_service):
    backend = ideal_service.backend("fake_manila")
    program, _, _ = sweep_program(100, backend)
    executor = Executor(backend)
    executor.options.execution.scheduler_timing = True
    executor.options.execution.rep_delay = 0.0001
    executor.options.experimental = {"foo": 1}
    executor.options.environment.job_tags = ["sweep"]
    executor.options.max_execution_time = 120
    job = executor.run(program)
    job.result()
    logs = job.logs()
    assert "scheduler_timing=True ignored" in logs
    assert "rep_delay=0.0001 ignored" in logs
    assert "Experimental options ignored" in logs
    assert job.tags == ["sweep"]
    raw = ideal_service._active_api_client.job_get(job.job_id())
    assert raw["cost"] == 120 and raw["tags"] == ["sweep"]


def _post(server, params: dict, backend: str = "fake_manila", program: str = "executor"):
    return requests.post(server.url + "/api/v1/jobs", timeout=30,
                         headers={"Authorization": "Bearer x"},
                         json={"program_id": program, "backend": backend, "params": params})


def _client_params(program: QuantumProgram) -> dict:
    """The params dict exactly as ``Executor.run`` would send it."""
    from qiskit_ibm_runtime.options_models import ExecutorOptions
    from qiskit_ibm_runtime.quantum_program.params_converters import (
        QUANTUM_PROGRAM_PARAMS_CONVERTERS)

    return QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(
        program, ExecutorOptions()).model_dump(mode="json")


def test_malformed_executor_payloads_get_a_clear_400(ideal_server):
    program, _, _ = sweep_program(10, FakeManilaV2())
    good = _client_params(program)
    cases = {
        "schema_version": {**good, "schema_version": "v9.9"},
        "quantum_program.shots": {**good, "quantum_program": {**good["quantum_program"],
                                                              "shots": 0}},
        "quantum_program": {"schema_version": "v2.0", "options": {}},
        "could not be decoded": {**good, "quantum_program": {
            **good["quantum_program"], "circuits": {**good["quantum_program"]["circuits"],
                                                    "b64_data": "bm90IHFweQ=="}}},
        "meas_level": {**good, "quantum_program": {**good["quantum_program"],
                                                   "meas_level": "raw"}},
    }
    for expected, params in cases.items():
        response = _post(ideal_server, params)
        assert response.status_code == 400, (expected, response.text)
        message = response.json()["errors"][0]["message"]
        assert expected in message, (expected, message)

    wide = QuantumCircuit(6, 6)
    wide.measure(range(6), range(6))
    response = _post(ideal_server, _client_params(QuantumProgram(10, [CircuitItem(wide)])))
    assert response.status_code == 400 and "only 5" in response.json()["errors"][0]["message"]

    items = [dict(item) for item in good["quantum_program"]["items"]]
    items[2]["samplex_arguments"] = {}  # the client refuses to send this; a raw caller may
    response = _post(ideal_server, {**good, "quantum_program": {**good["quantum_program"],
                                                                "items": items}})
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert "samplex arguments are missing" in message and "parameter_values" in message

    not_isa = QuantumCircuit(1, 1)
    not_isa.ry(0.3, 0)
    not_isa.measure(0, 0)
    response = _post(ideal_server, _client_params(QuantumProgram(10, [CircuitItem(not_isa)])))
    assert response.status_code == 400
    assert "uses ry, which fake_manila does not support" in response.json()["errors"][0]["message"]

    response = _post(ideal_server, {"pubs": []}, backend="mock_manila", program="sampler")
    assert response.status_code == 400 and "dry-run" in response.json()["errors"][0]["message"]

    assert _post(ideal_server, good).status_code == 200  # the same payload, unbroken, runs


def test_an_executor_without_execute_program_runs_programs():
    """A duck-typed plug-in (no ``BaseExecutor``) gets the Sampler route: no server needed
    to show the interface, so this one runs in-process on qiskit's reference sampler."""
    from qiskit.primitives import StatevectorSampler

    from qrs.execution import execute_program as execute

    class PlugIn:
        name = "plug-in"

        def execute_sampler(self, pubs, options, backend_name):
            return StatevectorSampler(default_shots=options["default_shots"]).run(pubs).result()

    program, thetas, _ = sweep_program(500, FakeManilaV2())
    result = execute(PlugIn(), program, {}, "fake_manila")
    assert result[2]["c"].shape == (4, 5, 500, 1)
    corrected = result[2]["c"] ^ result[2]["measurement_flips.c"]
    assert not corrected[:, 0].any() and corrected[:, -1].all()  # θ = 0 → 0, θ = π → 1
