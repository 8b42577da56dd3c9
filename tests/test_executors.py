"""Executors: selection from QRS_EXECUTOR, GPU start-up checks, memory refusal, hybrid
routing, a custom executor and a Dask LocalCluster — the last three through a real
server process and the stock client.

No GPU exists here: the GPU tests check the start-up refusal for real, and the GPU
configuration (options, memory limit) with ``FakeGPU``, a stand-in for the GPU only.
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

from qrs import create_app
from qrs.config import Config
from qrs.executors.base import ExecutorUnavailable, JobRefused, resolve
from qrs.executors.dask import DaskExecutor
from qrs.executors.gpu import GPUExecutor, diagnose_gpu
from qrs.executors.hybrid import HybridExecutor
from qrs.executors.local import LocalExecutor
from qrs.metadata import BackendMetadataProvider

from .conftest import connect
from .example_executor import StatevectorExecutor
from .support.server import ServerProcess
from .support.payloads import SIGMAS, assert_binomial, bell, entangled, isa

CUSTOM = "tests.example_executor:StatevectorExecutor"
NO_GPU = diagnose_gpu() is not None
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")


@pytest.fixture(scope="module")
def metadata() -> BackendMetadataProvider:
    return BackendMetadataProvider()


def ghz(width: int, measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(1, width):
        circuit.cx(0, qubit)
    if measure:
        circuit.measure_all()
    return circuit


def ry_circuit(theta: float) -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    return circuit


# ----------------------------------------------------------------- selection
@pytest.mark.parametrize("spec, cls", [
    ("local", LocalExecutor), ("CPU", LocalExecutor), ("gpu", GPUExecutor),
    ("hybrid", HybridExecutor), ("dask", DaskExecutor), (CUSTOM, StatevectorExecutor)])
def test_executor_selection_from_env(spec, cls):
    config = Config.from_env({"QRS_EXECUTOR": spec})
    assert config.executor == spec
    assert type(resolve(config.executor)) is cls


@pytest.mark.parametrize("env, name", [
    ({"QRS_EXECUTOR": "local"}, "local"),
    ({"QRS_EXECUTOR": CUSTOM}, "statevector"),
    ({"QRS_EXECUTOR": "gpu", "QRS_GPU_FALLBACK": "cpu"}, "gpu-fallback-cpu"),
    ({"QRS_EXECUTOR": "hybrid", "QRS_HYBRID_LARGE": CUSTOM}, "hybrid(local|statevector)"),
])
def test_create_app_builds_the_executor_the_env_names(tmp_path, env, name):
    if not NO_GPU and "QRS_GPU_FALLBACK" in env:
        name = "gpu"
    app = create_app(Config.from_env({**env, "QRS_DATA_DIR": str(tmp_path)}))
    try:
        assert app.extensions["qrs"].runner.executor_name == name  # as its job process set it up
        assert app.test_client().get("/health").get_json()["executor"] == name
    finally:
        app.extensions["qrs"].runner.stop()


@pytest.mark.parametrize("spec, words", [
    ("quantum-magic", ["neither one of", "package.module:ClassName"]),
    ("tests.example_executor:Missing", ["cannot load", "Missing"]),
    ("no_such_package.mod:Executor", ["cannot load", "no_such_package"]),
    ("tests.example_executor:__doc__", ["is not a class"]),
    ("tests.example_executor:joblog", ["is not a class"]),
    ("tests.example_executor:Any", ["Any() failed"]),
    ("collections:OrderedDict", ["does not implement the executor interface",
                                "execute_sampler"]),
])
def test_bad_executor_specs_stop_create_app_with_a_clear_error(tmp_path, spec, words):
    with pytest.raises(ExecutorUnavailable) as info:
        create_app(Config(executor=spec, data_dir=str(tmp_path)))
    for word in words:
        assert word in str(info.value)


def test_unreachable_dask_scheduler_stops_start_up(tmp_path):
    with pytest.raises(ExecutorUnavailable, match="cannot use the Dask scheduler"):
        create_app(Config(executor="dask", dask_scheduler="tcp://127.0.0.1:1",
                          dask_connect_timeout=2, data_dir=str(tmp_path)))


# ------------------------------------------------------------------------ GPU
@needs_no_gpu
@pytest.mark.parametrize("executor", ["gpu", "hybrid"])
def test_gpu_without_a_gpu_fails_at_start_up_saying_what_is_missing(tmp_path, executor):
    with pytest.raises(ExecutorUnavailable) as info:
        create_app(Config(executor=executor, data_dir=str(tmp_path)))
    message = str(info.value)
    for expected in ("available_devices()", "pip install '.[gpu]'", "qiskit-aer-gpu",
                     "nvidia-", "-cu12", "NVIDIA GPU", "QRS_GPU_FALLBACK=cpu"):
        assert expected in message, expected


@needs_no_gpu
@pytest.mark.system
def test_qrs_serve_with_gpu_and_no_gpu_exits_at_once(tmp_path):
    server = ServerProcess(tmp_path / "data", env={"QRS_EXECUTOR": "gpu"})
    with pytest.raises(RuntimeError, match="server exited with 2") as info:
        server.start(timeout=60)
    assert "qrs: cannot start: QRS_EXECUTOR=gpu needs Aer's GPU device" in str(info.value)
    assert "Traceback" not in str(info.value)


@needs_no_gpu
def test_gpu_fallback_to_cpu_is_opt_in_loud_and_runs_jobs(caplog, metadata):
    with pytest.raises(ExecutorUnavailable, match="QRS_GPU_FALLBACK='yes'"):
        GPUExecutor().setup(Config(gpu_fallback="yes"), metadata)
    executor = GPUExecutor()
    with caplog.at_level(logging.WARNING, logger="qrs.executors.gpu"):
        executor.setup(Config(gpu_fallback="cpu", noise=False), metadata)
    assert "GPU UNAVAILABLE" in caplog.text and "qiskit-aer-gpu" in caplog.text
    assert executor.name == "gpu-fallback-cpu"
    options = executor.simulator_options()
    assert options["device"] == "CPU" and "target_gpus" not in options
    backend = metadata.get_backend("fake_manila")
    shots = 2000
    counts = executor.execute_sampler([(isa(bell(), backend), None, shots)], {},
                                      "fake_manila")[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert_binomial(counts["00"], shots, 0.5)


class FakeGPU(GPUExecutor):
    """Stand-in for a GPU (none exists here): Aer reports a GPU device with 16 GiB and
    the probe circuit succeeds unless cuStateVec is asked for. Everything else — option
    building, limits, refusals — is the real GPUExecutor's code."""

    def diagnose(self) -> str | None:
        return None

    def _run_probe(self) -> int:
        if self.simulator_options().get("cuStateVec_enable"):
            raise RuntimeError("this Aer build has no cuStateVec")
        return 16384


def test_gpu_settings_reach_aer_options_and_memory_limit(metadata, caplog):
    env = {"QRS_EXECUTOR": "gpu", "QRS_GPU_DEVICE": "1", "QRS_GPU_MEMORY_LIMIT": "2G",
           "QRS_GPU_USE_NOISE": "0", "QRS_GPU_BATCHED_SHOTS": "1",
           "QRS_SIMULATION_METHOD": "statevector", "QRS_FUSION_THRESHOLD": "20",
           "QRS_AER_THREADS": "3"}
    executor = FakeGPU()
    executor.setup(Config.from_env(env), metadata)
    assert executor.name == "gpu" and executor.noise is False
    options = executor.simulator_options()
    assert options == {"method": "statevector", "device": "GPU", "max_parallel_threads": 3,
                       "fusion_enable": True, "fusion_threshold": 20, "target_gpus": [1],
                       "batched_shots_gpu": True}
    assert executor.memory_limit_mb == 2048
    plan, = planned(executor, ghz(27))  # 2 GiB: just fits
    assert plan.parts[0].device == "GPU" and plan.method == "statevector"
    with pytest.raises(JobRefused, match=r"28-qubit.*'statevector' about 4,096 MiB on the GPU.*"
                                         r"2,048 MiB on the GPU \(QRS_GPU_MEMORY_LIMIT\)"):
        planned(executor, ghz(28))

    # No QRS_GPU_MEMORY_LIMIT: 90 % of the GPU's memory; cuStateVec dropped with a warning.
    executor = FakeGPU()
    with caplog.at_level(logging.WARNING, logger="qrs.executors.gpu"):
        executor.setup(Config(gpu_custatevec=True), metadata)
    assert "cuStateVec is not usable" in caplog.text
    assert executor.memory_limit_mb == int(16384 * 0.9)
    assert "cuStateVec_enable" not in executor.simulator_options()
    assert executor.noise is True


# --------------------------------------------------------------------- memory
def planned(executor: LocalExecutor, *circuits: QuantumCircuit) -> list:
    """Each circuit planned as a noiseless Sampler pub, as the executor does before a job."""
    facts = executor.noise_facts(None, False)
    return [executor.plan("sampler", index, SamplerPub.coerce((circuit, None, 100)), facts)
            for index, circuit in enumerate(circuits)]


@pytest.mark.parametrize("method, fits, refused", [
    ("statevector", 16, 17),      # 16·2^n bytes: 1 MiB at 16 qubits
    ("density_matrix", 8, 9),     # 16·4^n bytes: 1 MiB at 8 qubits
    ("matrix_product_state", 60, None),  # a GHZ chain: bond dimension 2
    ("stabilizer", 60, None),
])
def test_forced_method_memory_refusal(metadata, method, fits, refused):
    executor = LocalExecutor()
    executor.setup(Config(max_memory_mb=1, simulation_method=method, noise=False), metadata)
    plan, = planned(executor, ghz(fits))
    assert plan.method == method
    if refused is not None:
        with pytest.raises(JobRefused) as info:
            planned(executor, ghz(2), ghz(refused))
        message = str(info.value)
        assert message.startswith("Pub 2:") and f"{refused}-qubit" in message
        assert f"'{method}' about" in message and "QRS_MAX_MEMORY_MB" in message
        assert f"QRS_SIMULATION_METHOD={method} is forced" in message


def test_automatic_plan_refuses_only_when_no_method_fits(metadata):
    executor = LocalExecutor()
    executor.setup(Config(max_memory_mb=1, noise=False), metadata)
    assert planned(executor, ghz(60))[0].method == "stabilizer"  # Clifford: any width
    with pytest.raises(JobRefused) as info:
        planned(executor, entangled(18))
    message = str(info.value)
    for named in ("'stabilizer' not possible (not Clifford", "'statevector' about 4 MiB",
                  "'matrix_product_state' about", "limit of 1 MiB (QRS_MAX_MEMORY_MB)"):
        assert named in message, message
    assert "'density_matrix'" not in message  # no noise: never better than a state vector


def test_simulators_and_noise_models_are_shared_per_backend_and_calibration(metadata):
    first, second = LocalExecutor(), LocalExecutor()
    first.setup(Config(), metadata)
    second.setup(Config(), metadata)
    assert first.simulator("fake_manila") is second.simulator("fake_manila")
    calibration = first.calibration("fake_manila")
    assert calibration  # keyed on the properties' last_update_date
    assert first.noise_model("fake_manila", calibration) is \
        second.noise_model("fake_manila", calibration)
    ideal = LocalExecutor(noise=False)
    ideal.setup(Config(), metadata)
    assert ideal.simulator("fake_manila") is not first.simulator("fake_manila")


# ---------------------------------------------- through the server, stock client
def _server(tmp_path, **env: str) -> ServerProcess:
    return ServerProcess(tmp_path / "data", env={"QRS_EXECUTOR_THREADS": "1", **env})


@pytest.mark.system
def test_custom_executor_from_a_test_module_through_the_server(tmp_path):
    server = _server(tmp_path, QRS_EXECUTOR=CUSTOM).start()
    try:
        service = connect(server)
        backend = service.backend("fake_manila")
        shots = 3000
        job = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots)
        counts = job.result()[0].data.meas.get_counts()
        assert set(counts) == {"00", "11"}  # exact simulation: no noise at all
        assert_binomial(counts["00"], shots, 0.5)
        assert "with the statevector executor" in job.logs()
        assert "Exact statevector sampling" in job.logs()

        circuit = isa(ry_circuit(math.pi / 3), backend)
        observables = [SparsePauliOp(p).apply_layout(circuit.layout) for p in ("Z", "X")]
        data = EstimatorV2(mode=backend).run([(circuit, observables)]).result()[0].data
        assert np.allclose(data.evs, [0.5, math.sqrt(3) / 2])  # exact values
    finally:
        server.stop()


@pytest.mark.system
def test_hybrid_routes_by_width_and_logs_the_rule(tmp_path):
    server = _server(tmp_path, QRS_EXECUTOR="hybrid", QRS_HYBRID_LARGE=CUSTOM,
                     QRS_HYBRID_GPU_MIN_QUBITS="3").start()
    try:
        service = connect(server)
        backend = service.backend("fake_manila")
        shots = 4000
        small = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots)
        large = SamplerV2(mode=backend).run([isa(ghz(3), backend)], shots=shots)
        small_counts = small.result()[0].data.meas.get_counts()
        large_counts = large.result()[0].data.meas.get_counts()

        assert re.search(r"widest independent part has 2 qubits < QRS_HYBRID_GPU_MIN_QUBITS=3 "
                         r"→ local executor", small.logs()), small.logs()
        assert re.search(r"widest independent part has 3 qubits ≥ QRS_HYBRID_GPU_MIN_QUBITS=3 "
                         r"→ statevector executor", large.logs()), large.logs()
        # The small job ran on noisy Aer, the large one on the exact large-side executor.
        correlated = small_counts.get("00", 0) + small_counts.get("11", 0)
        assert 0.8 * shots < correlated < shots, small_counts
        assert set(large_counts) == {"000", "111"}
        assert_binomial(large_counts["000"], shots, 0.5)
    finally:
        server.stop()


@pytest.mark.system
def test_dask_local_cluster_runs_sampler_and_estimator_through_the_server(tmp_path):
    server = _server(tmp_path, QRS_EXECUTOR="dask", QRS_DASK_SCHEDULER="local",
                     QRS_DASK_WORKERS="2", QRS_SIMULATION_METHOD="density_matrix",
                     QRS_MAX_MEMORY_MB="1").start(timeout=180)
    try:
        service = connect(server)
        assert service.backend("fake_manila").name == "fake_manila"
        backend = service.backend("fake_manila")

        # Sampler: two pubs (tasks) with their own shot counts, noisy density matrix.
        job = SamplerV2(mode=backend).run([(isa(bell(), backend), None, 4000),
                                           (isa(ghz(3), backend), None, 1000)])
        result = job.result()
        bell_counts = result[0].data.meas.get_counts()
        ghz_counts = result[1].data.meas.get_counts()
        assert sum(bell_counts.values()) == 4000 and sum(ghz_counts.values()) == 1000
        correlated = bell_counts.get("00", 0) + bell_counts.get("11", 0)
        assert 0.8 * 4000 < correlated < 4000, bell_counts  # noise flips a few outcomes
        assert_binomial(bell_counts.get("00", 0), correlated, 0.5)
        assert ghz_counts.get("000", 0) + ghz_counts.get("111", 0) > 0.7 * 1000, ghz_counts
        logs = job.logs()
        assert "with the dask executor" in logs
        assert len(re.findall(r"done on Dask worker tcp://", logs)) == 2, logs

        # Estimator: <Z> = cos θ on ry(θ)|0>, <ZZ> ≈ 1 on a Bell state (noise shrinks both).
        estimator = EstimatorV2(mode=backend)
        estimator.options.default_precision = 0.01
        ry = isa(ry_circuit(math.pi / 3), backend)
        pair = isa(bell(measure=False), backend)
        result = estimator.run([(ry, SparsePauliOp("Z").apply_layout(ry.layout)),
                                (pair, SparsePauliOp("ZZ").apply_layout(pair.layout))]).result()
        for data, exact in zip((result[0].data, result[1].data), (0.5, 1.0)):
            ev, std = float(data.evs), float(data.stds)
            assert 0 < std < 0.05
            # readout error and decoherence pull values towards 0 by a few percent
            assert exact * 0.85 - SIGMAS * std <= ev <= exact + SIGMAS * std, (ev, exact, std)

        # Memory refusal on the worker comes back as the job's failure reason.
        wide_backend = service.backend("fake_guadalupe")
        refused = SamplerV2(mode=wide_backend).run([isa(ghz(9), wide_backend)])
        # (routing may touch more qubits than the GHZ has: only the refusal's form counts)
        with pytest.raises(RuntimeJobFailureError, match=r"\d+-qubit circuit part .* needs "
                                                         r"'density_matrix' about .*"
                                                         r"QRS_MAX_MEMORY_MB"):
            refused.result()
    finally:
        server.stop()
