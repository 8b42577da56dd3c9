"""Client behaviours that programs written for IBM rely on, through the stock client:
result shapes, execution spans, ``physical_qubits``, calibration ids, a service found
without an instance, private jobs.

Most tests share the session's noise-free server (``ideal_service``): they are about
shapes and protocol, not physics; values are still checked against their exact answers
within the reported error bars.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
import requests
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.providers.exceptions import QiskitBackendNotFoundError
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.api.exceptions import RequestsApiError
from qiskit_ibm_runtime.execution_span import DoubleSliceSpan, ExecutionSpans

from qrs.config import Config
from qrs.executors.local import LocalExecutor
from qrs.metadata import BackendMetadataProvider

from .support.payloads import SIGMAS, assert_binomial, bell, isa, sampler_params
from .support.server import ServerProcess

INSTANCE_CRN = Config().instance_crn


def ry_circuit() -> QuantumCircuit:
    theta = Parameter("theta")
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    return qc


# ------------------------------------------------------------------ result shapes
def test_estimator_fields_are_arrays_of_every_pub_shape(ideal_service):
    """``evs``, ``stds`` and ``ensemble_standard_error`` are ndarrays of the pub's shape:
    0-d for shape ``()`` (``.shape`` works, as on IBM), broadcast shapes included."""
    backend = ideal_service.backend("fake_manila")
    bell_isa = isa(bell(measure=False), backend)
    zz = SparsePauliOp("ZZ").apply_layout(bell_isa.layout)
    xx = SparsePauliOp("XX").apply_layout(bell_isa.layout)
    ry = isa(ry_circuit(), backend)
    z, x = (SparsePauliOp(p).apply_layout(ry.layout) for p in ("Z", "X"))
    angles = np.array([0.0, math.pi / 3, math.pi])
    pubs = [(bell_isa, zz), (bell_isa, [zz]), (bell_isa, [[zz], [xx]]),
            (ry, [[z], [x]], angles)]
    exact = [np.array(1.0), np.array([1.0]), np.array([[1.0], [1.0]]),
             np.array([np.cos(angles), np.sin(angles)])]
    estimator = EstimatorV2(mode=backend)
    estimator.options.default_precision = 0.02
    result = estimator.run(pubs).result()
    for pub, expected in zip(result, exact):
        data = pub.data
        assert data.shape == expected.shape
        for name in ("evs", "stds", "ensemble_standard_error"):
            assert isinstance(data[name], np.ndarray), (name, type(data[name]))
            assert data[name].shape == expected.shape, (name, data[name].shape)
        assert np.all(np.abs(data.evs - expected) <= SIGMAS * data.stds + 0.02 * SIGMAS)
    assert float(result[0].data.stds) >= 0  # a 0-d array is still a number


def test_sampler_bit_arrays_have_the_pub_shape(ideal_service):
    backend = ideal_service.backend("fake_manila")
    swept = ry_circuit()
    swept.measure_all()
    shots = 400
    result = SamplerV2(mode=backend).run(
        [(isa(bell(), backend), None, shots), (isa(swept, backend), [[0.0], [math.pi]], shots)]
    ).result()
    assert result[0].data.shape == () and result[0].data.meas.shape == ()
    assert result[1].data.meas.shape == (2,) and result[1].data.meas.num_shots == shots
    assert result[1].data.meas[1].get_counts() == {"1": shots}


# ------------------------------------------------------------------ execution spans
def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_sampler_results_carry_one_span_per_pub_within_the_run(ideal_service):
    """What IBM's job-monitoring guide reads: ``ExecutionSpans`` of ``DoubleSliceSpan``
    with ``mask``, ``filter_by_pub``, ``start``/``stop``/``duration`` and ``sort``."""
    backend = ideal_service.backend("fake_manila")
    swept = ry_circuit()
    swept.measure_all()
    job = SamplerV2(mode=backend).run([(isa(bell(), backend), None, 300),
                                       (isa(swept, backend), [0.0, 1.0, 2.0], 200)])
    result = job.result()
    spans = result.metadata["execution"]["execution_spans"]
    assert isinstance(spans, ExecutionSpans) and len(spans) == 2
    assert all(isinstance(span, DoubleSliceSpan) for span in spans)
    assert spans[0].pub_idxs == [0] and spans[1].pub_idxs == [1]
    assert spans[0].mask(0).shape == (300,) and spans[0].mask(0).all()
    assert spans[1].mask(1).shape == (3, 200) and spans[1].size == 600
    assert spans.filter_by_pub(1).pub_idxs == [1]
    assert spans.filter_by_pub(1)[1].size == 600
    assert spans[0].stop <= spans[1].start  # pubs run one after the other
    assert all(span.duration >= 0 for span in spans) and spans.duration >= 0
    assert [s.start for s in spans.sort(inplace=False)] == sorted(s.start for s in spans)
    stamps = job.metrics()["timestamps"]
    slack = timedelta(milliseconds=1)  # the API rounds to microseconds
    assert _iso(stamps["running"]) - slack <= spans.start <= spans.stop
    assert spans.stop <= _iso(stamps["finished"]) + slack


def test_estimator_results_carry_no_sampler_spans(ideal_service):
    backend = ideal_service.backend("fake_manila")
    circuit = isa(bell(measure=False), backend)
    result = EstimatorV2(mode=backend).run(
        [(circuit, SparsePauliOp("ZZ").apply_layout(circuit.layout))]).result()
    assert "execution" not in result.metadata


def test_batched_sampler_jobs_get_spans_of_their_shared_call(tmp_path):
    """Small jobs run together in one Aer call: each result says when that call ran."""
    metadata = BackendMetadataProvider()
    executor = LocalExecutor(noise=False)
    executor.setup(Config(data_dir=str(tmp_path)), metadata)
    circuit = isa(bell(), metadata.get_backend("fake_manila"))
    first, second = executor.execute_sampler_batch(
        [([(circuit, None, 100)], {}), ([(circuit, None, 50), (circuit, None, 70)], {})],
        "fake_manila")
    spans = [r.metadata["execution"]["execution_spans"] for r in (first, second)]
    assert [len(s) for s in spans] == [1, 1]
    assert spans[0][0].size == 100 and spans[1][0].size == 120
    assert spans[1][0].pub_idxs == [0, 1]  # indices within the job, not the batch
    assert (spans[0][0].start, spans[0][0].stop) == (spans[1][0].start, spans[1][0].stop)


@pytest.fixture(scope="module")
def zeros_server(tmp_path_factory):
    """An executor that records no spans (``tests.executors:AllZerosExecutor``)."""
    server = ServerProcess(tmp_path_factory.mktemp("zeros") / "data",
                           env={"QRS_EXECUTOR": "tests.executors:AllZerosExecutor"}).start()
    yield server
    server.stop()


def test_executors_without_spans_get_one_span_over_their_run(zeros_server):
    from .conftest import connect

    backend = connect(zeros_server).backend("fake_manila")
    result = SamplerV2(mode=backend).run([(isa(bell(), backend), None, 30),
                                          (isa(bell(), backend), None, 40)]).result()
    (span,) = result.metadata["execution"]["execution_spans"]
    assert isinstance(span, DoubleSliceSpan) and span.pub_idxs == [0, 1]
    assert span.size == 70 and span.duration >= 0
    assert result[0].data.meas.get_counts() == {"00": 30}


# ---------------------------------------------------------------- backend fields
def test_backends_report_physical_qubits(ideal_service):
    """The client passes ``GET /backends``' ``physical_qubits`` to ``IBMBackend``: qubits,
    reset qubits and couplers combined (332 on a 156-qubit Heron)."""
    assert ideal_service.backend("fake_fez").physical_qubits == 332
    manila = ideal_service.backend("fake_manila")
    assert manila.physical_qubits == 5 + 4  # a line of five qubits: four couplers
    for backend in ideal_service.backends(min_num_qubits=100):
        assert backend.physical_qubits > backend.num_qubits


def test_unknown_calibration_id_is_not_found(ideal_service, caplog):
    """As on IBM: the backend is not found, and the client's log names the id."""
    with caplog.at_level(logging.WARNING, logger="qiskit_ibm_runtime"):
        logging.getLogger("qiskit_ibm_runtime").addHandler(caplog.handler)
        try:
            with pytest.raises(QiskitBackendNotFoundError, match="No backend matches"):
                ideal_service.backend("fake_manila", calibration_id="invalid_id")
        finally:
            logging.getLogger("qiskit_ibm_runtime").removeHandler(caplog.handler)
    assert "invalid_id" in caplog.text and "not found" in caplog.text


def test_known_calibration_id_serves_that_calibration_and_runs(ideal_server, ideal_service):
    backend = ideal_service.backend("fake_manila")
    calibration = backend.properties().calibration_id
    assert calibration.startswith("fake_manila-")
    pinned = ideal_service.backend("fake_manila", calibration_id=calibration)
    assert pinned.calibration_id == calibration
    props = pinned.properties(refresh=True)
    assert props.calibration_id == calibration and props.t1(0) == backend.properties().t1(0)
    shots = 500
    counts = SamplerV2(mode=pinned).run([isa(bell(), pinned)], shots=shots).result()[0] \
        .data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert_binomial(counts["00"], shots, 0.5)
    # A job naming a calibration the backend does not have is refused, naming it.
    body = {"program_id": "sampler", "backend": "fake_manila", "calibration_id": "nope",
            "params": sampler_params()}
    answer = requests.post(ideal_server.url + "/jobs", json=body, timeout=30)
    assert answer.status_code == 404 and "'nope'" in answer.json()["errors"][0]["message"]


# ------------------------------------------------------------ no instance given
@pytest.fixture
def cloud_env(ideal_server, monkeypatch):
    """Point the client's IBM Cloud calls at the server by URL (``tests/test_nginx.py``
    does it with no variables at all, through DNS names): IAM, Global Search, Catalog."""
    monkeypatch.delenv("QISKIT_FUNCTIONS_EXPERIMENTAL", raising=False)  # qrs.client sets it
    monkeypatch.setenv("IAM_URL", ideal_server.url)
    monkeypatch.setenv("GLOBAL_SEARCH_URL", ideal_server.url + "/cloud/search")
    monkeypatch.setenv("GLOBAL_CATALOG_URL", ideal_server.url + "/cloud/catalog/api/v1")
    return ideal_server


def _service(server: ServerProcess, **kwargs) -> QiskitRuntimeService:
    return QiskitRuntimeService(channel="ibm_quantum_platform", token="any", url=server.url,
                                url_resolver=lambda url, *_: url + "/api/v1", **kwargs)


def test_service_without_an_instance_finds_the_one_instance(cloud_env):
    service = _service(cloud_env)
    assert [i["crn"] for i in service.instances()] == [INSTANCE_CRN]
    assert service.instances()[0]["plan"] == "open"
    backend = service.backend("fake_manila")
    assert service.active_instance() == INSTANCE_CRN
    shots = 600
    counts = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots).result()[0] \
        .data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert_binomial(counts["00"], shots, 0.5)
    circuit = isa(bell(measure=False), backend)
    data = EstimatorV2(mode=backend).run(
        [(circuit, SparsePauliOp("XX").apply_layout(circuit.layout))]).result()[0].data
    assert abs(float(data.evs) - 1.0) <= SIGMAS * float(data.stds) + 1e-9


def test_instance_by_name_and_plan_preference(cloud_env):
    service = _service(cloud_env, instance="qrs")
    assert service.active_instance() == INSTANCE_CRN
    assert service.backend("fake_manila").name == "fake_manila"
    assert _service(cloud_env, plans_preference=["open"]).backend("fake_lima").num_qubits == 5
    with pytest.raises(Exception, match="not a valid instance name"):
        _service(cloud_env, instance="someone-elses")


@pytest.mark.system
def test_cloud_lookups_need_a_valid_token_in_key_mode(tmp_path):
    server = ServerProcess(tmp_path / "data", env={"QRS_API_KEYS_FILE": str(tmp_path / "k")})
    (tmp_path / "k").write_text("alice:alice-key\n")
    server.start()
    try:
        search = server.url + "/cloud/search/v3/resources/search"
        assert requests.post(search, json={}, timeout=30).status_code == 401
        token = requests.post(server.url + "/identity/token",
                              data={"apikey": "alice-key"}, timeout=30).json()["access_token"]
        found = requests.post(search, json={}, headers={"Authorization": f"Bearer {token}"},
                              timeout=30)
        assert found.status_code == 200 and found.json()["items"][0]["name"] == "qrs"
        # The same service by Host name, as the client reaches it through DNS.
        by_host = requests.get(server.url + "/api/v1/qrs-open-plan", timeout=30, headers={
            "Authorization": f"Bearer {token}", "Host": "globalcatalog.qrs.lab.example"})
        assert by_host.json()["metadata"]["pricing"]["type"] == "free"
    finally:
        server.stop()


# ------------------------------------------------------------------- private jobs
def test_private_job_shows_no_inputs_serves_its_result_once_and_keeps_no_params(
        ideal_server, ideal_service):
    backend = ideal_service.backend("fake_manila")
    sampler = SamplerV2(mode=backend)
    sampler.options.environment.private = True
    shots = 300
    job = sampler.run([isa(bell(), backend)], shots=shots)
    counts = job.result()[0].data.meas.get_counts()
    assert sum(counts.values()) == shots and set(counts) == {"00", "11"}
    assert job.private
    assert job.inputs == {}
    assert ideal_service.job(job.job_id()).inputs == {}
    with pytest.raises(RequestsApiError, match="410.*only once"):
        job.result()
    data = ideal_server.data_dir
    assert not (data / "params" / f"{job.job_id()}.json").exists()
    assert not (data / "results" / f"{job.job_id()}.json").exists()
    page = requests.get(f"{ideal_server.url}/ui/jobs/{job.job_id()}", timeout=30).text
    assert "Private job" in page and "Register" not in page

    public = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=shots)
    public.result()
    assert public.inputs["pubs"] and not public.private
    assert public.result()[0].data.meas.num_shots == shots  # read as often as wanted
