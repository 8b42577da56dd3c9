"""Every configured limit, and the payload checks, with the message each refusal carries.

Most checks submit jobs to the real app (real store, real decoding) through Flask's test
client with a small limit configured, building params exactly as the stock client does
(``RuntimeEncoder``); one goes through the stock client against a live server.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from qiskit import QuantumCircuit, qpy
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import SamplerV2

from qrs import create_app
from qrs.codec import decode_params
from qrs.config import Config
from qrs.errors import InvalidInput

from .support.payloads import bell, isa, wire


def circuit(qubits: int = 2, clbits: int | None = None) -> QuantumCircuit:
    """An entangling circuit in fake_manila's native gates (sx, cx)."""
    qc = QuantumCircuit(qubits, qubits if clbits is None else clbits)
    qc.sx(0)
    for q in range(1, qubits):
        qc.cx(0, q)
    qc.measure(range(min(qubits, qc.num_clbits)), range(min(qubits, qc.num_clbits)))
    return qc


def sampler_job(pubs, options=None, backend="fake_manila", **extra) -> dict:
    return {"program_id": "sampler", "backend": backend,
            "params": {"pubs": wire(pubs), "options": options or {}, "version": 2}, **extra}


def estimator_job(pubs, backend="fake_manila") -> dict:
    return {"program_id": "estimator", "backend": backend,
            "params": {"pubs": wire(pubs), "options": {}, "version": 2}}


@pytest.fixture
def make_client(tmp_path):
    """An app with some limits changed (``start_runner=False`` keeps jobs queued); its
    runner threads are stopped after the test."""
    apps = []

    def make(**changes):
        config = Config(data_dir=str(tmp_path / "data"), executor_threads=1).replace(**changes)
        apps.append(create_app(config))
        return apps[-1].test_client()
    yield make
    for app in apps:
        app.extensions["qrs"].runner.stop()


def refused(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"errors", "trace"}
    message = body["errors"][0]["message"]
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------- sizes
def test_body_size_413(make_client):
    client = make_client(max_body_mb=1)
    big = {"program_id": "sampler", "backend": "fake_manila",
           "params": {"pubs": [], "pad": "x" * (2 * 2**20)}}
    refused(client.post("/jobs", json=big), 413, "larger than 1 MiB", "QRS_MAX_BODY_MB")


def test_decoded_size_zlib_bomb_413(make_client):
    client = make_client(max_decoded_mb=1)
    values = wire(np.zeros((2, 2**18)))  # 4 MiB inflated from a few KiB
    assert len(values["__value__"]) < 20_000
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rz(theta, 0)
    qc.measure_all()
    body = sampler_job([(qc,)])
    body["params"]["pubs"][0].append(values)
    refused(client.post("/jobs", json=body), 413, "params.pubs[0][1]", "QRS_MAX_DECODED_MB")


def test_decoded_budget_is_per_job_not_per_value(make_client):
    client = make_client(max_decoded_mb=1)
    qc = circuit()
    qc.metadata = {"pad": "y" * 400_000}  # each circuit ~0.4 MB inflated, 3 of them > 1 MiB
    refused(client.post("/jobs", json=sampler_job([(qc,)] * 3)), 413, "QRS_MAX_DECODED_MB")
    assert client.post("/jobs", json=sampler_job([(qc,)] * 2)).status_code == 200


def npy_payload(header_shape: tuple, data: bytes, dtype: str = "<f8") -> dict:
    """An ``ndarray`` wire value whose ``.npy`` header says ``header_shape``."""
    header = {"descr": dtype, "fortran_order": False, "shape": header_shape}
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    blob = zlib.compress(stream.getvalue() + data)
    return {"__type__": "ndarray", "__value__": base64.b64encode(blob).decode()}


def test_declared_1gb_array_refused_before_allocation(make_client):
    client = make_client()
    body = sampler_job([(circuit(),)])
    body["params"]["pubs"][0].append(npy_payload((2**27,), b"\0" * 8))  # 1 GiB declared
    refused(client.post("/jobs", json=body), 400, "declares shape (134217728,)",
            "carries 8 bytes")


def test_pickled_object_array_is_refused_and_never_runs(make_client, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    stream = io.BytesIO()
    np.save(stream, np.array([Exploit()], dtype=object), allow_pickle=True)
    value = {"__type__": "ndarray",
             "__value__": base64.b64encode(zlib.compress(stream.getvalue())).decode()}
    body = sampler_job([(circuit(),)])
    body["params"]["pubs"][0].append(value)
    refused(make_client().post("/jobs", json=body), 400, "Python objects")
    # Second line of defence: the decoder itself (numpy's allow_pickle=False) refuses it.
    with pytest.raises(InvalidInput, match="could not be decoded"):
        decode_params(body["params"], "sampler")
    assert not marker.exists()


def test_sparse_matrix_refused(make_client):
    body = sampler_job([(circuit(),)])
    body["params"]["pubs"][0].append({"__type__": "spmatrix", "__value__": "UEsDBA=="})
    refused(make_client().post("/jobs", json=body), 400, "sparse matrices")


# ---------------------------------------------------------------- malformed payloads
def qpy_bytes(qc: QuantumCircuit) -> bytes:
    stream = io.BytesIO()
    qpy.dump(qc, stream, version=17)  # what the 0.51 client sends
    return stream.getvalue()


def qpy_value(raw: bytes, compress: bool = True) -> dict:
    return {"__type__": "QuantumCircuit",
            "__value__": base64.b64encode(zlib.compress(raw) if compress else raw).decode()}


def widen(raw: bytes, qubits: int | None = None, clbits: int | None = None) -> bytes:
    """Rewrite a QPY v17 circuit header's declared widths (nothing else changes)."""
    from qiskit.qpy import formats

    data = bytearray(raw)
    offset, = struct.unpack_from("!Q", data, formats.FILE_HEADER_V10_SIZE + 1)
    fields = list(struct.unpack_from(formats.CIRCUIT_HEADER_V12_PACK, data, offset))
    names = formats.CIRCUIT_HEADER_V12._fields
    if qubits is not None:
        fields[names.index("num_qubits")] = qubits
    if clbits is not None:
        fields[names.index("num_clbits")] = clbits
    struct.pack_into(formats.CIRCUIT_HEADER_V12_PACK, data, offset, *fields)
    return bytes(data)


@pytest.mark.parametrize("value, words", [
    ({"__type__": "QuantumCircuit", "__value__": "not base64!"}, ["not valid base64"]),
    (qpy_value(b"QISKIT", compress=False), ["not valid zlib"]),
    (qpy_value(b"garbage that is no QPY"), ["not a valid QPY circuit"]),
    (qpy_value(qpy_bytes(circuit())[:40]), ["not a valid QPY circuit"]),
    (qpy_value(qpy_bytes(circuit())[:-20]), ["could not be decoded"]),
    (qpy_value(zlib.compress(qpy_bytes(circuit()))[:-4], compress=False), ["truncated"]),
    (qpy_value(widen(qpy_bytes(circuit()), qubits=4_000_000_000)),
     ["4000000000 qubits", "backend has only 5"]),
    (qpy_value(widen(qpy_bytes(circuit()), clbits=4_000_000_000)), ["QRS_MAX_CLBITS"]),
], ids=["base64", "zlib", "not-qpy", "cut-header", "cut-body", "cut-zlib", "4e9-qubits",
        "4e9-clbits"])
def test_malformed_qpy_answers_400(make_client, value, words):
    body = {"program_id": "sampler", "backend": "fake_manila",
            "params": {"pubs": [[value]], "version": 2}}
    refused(make_client().post("/jobs", json=body), 400, *words)


# ---------------------------------------------------------------- counts
def test_max_pubs(make_client):
    client = make_client(max_pubs=2)
    refused(client.post("/jobs", json=sampler_job([(circuit(),)] * 3)), 400,
            "3 pubs", "QRS_MAX_PUBS")
    assert client.post("/jobs", json=sampler_job([(circuit(),)] * 2)).status_code == 200


def test_max_parameter_bindings(make_client):
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rz(theta, 0)
    qc.measure_all()
    client = make_client(max_parameter_bindings=10)
    refused(client.post("/jobs", json=sampler_job([(qc, np.linspace(0, 1, 11)[:, None])])),
            400, "binds 11 parameter sets", "QRS_MAX_PARAMETER_BINDINGS")
    assert client.post("/jobs", json=sampler_job([(qc, np.linspace(0, 1, 10)[:, None])])) \
        .status_code == 200


def test_shots_per_pub_config_and_backend(make_client):
    client = make_client(max_pub_shots=1000)
    refused(client.post("/jobs", json=sampler_job([(circuit(), None, 1001)])), 400,
            "1001 shots", "QRS_MAX_PUB_SHOTS")
    client = make_client()
    refused(client.post("/jobs", json=sampler_job([(circuit(), None, 200_000)])), 400,
            "200000 shots", "at most 100000", "max_shots")
    refused(client.post("/jobs", json=sampler_job([(circuit(),)], {"default_shots": 10_000},
                                                  backend="fake_athens")),
            400, "at most 8192")


def test_shots_per_job(make_client):
    client = make_client(max_shots=1000)
    refused(client.post("/jobs", json=sampler_job([(circuit(), None, 600)] * 2)), 400,
            "1200 shots in total", "QRS_MAX_SHOTS")
    bare = QuantumCircuit(2)
    bare.sx(0)
    refused(client.post("/jobs", json=estimator_job([(bare, SparsePauliOp("ZZ"), None, 0.001)])),
            400, "1000000 shots in total", "QRS_MAX_SHOTS")


def test_qubits_above_backend(make_client):
    refused(make_client().post("/jobs", json=sampler_job([(circuit(6),)])), 400,
            "6 qubits", "backend has only 5")


def test_max_clbits(make_client):
    refused(make_client(max_clbits=4).post("/jobs", json=sampler_job([(circuit(2, 5),)])),
            400, "5 classical bits", "QRS_MAX_CLBITS")


def test_max_observables(make_client):
    bare = QuantumCircuit(2)
    bare.sx(0)
    observables = [SparsePauliOp(label) for label in ("ZZ", "XX", "YY")]
    refused(make_client(max_observables=2).post("/jobs", json=estimator_job(
        [(bare, observables)])), 400, "3 observables", "QRS_MAX_OBSERVABLES")


def test_max_tags(make_client):
    client = make_client(max_tags=2)
    refused(client.post("/jobs", json=sampler_job([(circuit(),)], tags=["a", "b", "c"])),
            400, "3 tags")
    job = client.post("/jobs", json=sampler_job([(circuit(),)], tags=["a"])).get_json()["id"]
    refused(client.put(f"/jobs/{job}/tags", json={"tags": ["a", "b", "c"]}), 400, "2 tags")


def test_queue_depth_per_user_429(make_client):
    client = make_client(max_queue_per_user=2, start_runner=False)
    for _ in range(2):
        assert client.post("/jobs", json=sampler_job([(circuit(),)])).status_code == 200
    response = client.post("/jobs", json=sampler_job([(circuit(),)]))
    refused(response, 429, "2 queued jobs", "QRS_MAX_QUEUE_PER_USER")
    assert int(response.headers["Retry-After"]) > 0


def test_jobs_per_session(make_client):
    client = make_client(max_jobs_per_session=2, start_runner=False)
    session = client.post("/sessions", json={"mode": "batch", "backend": "fake_manila"}) \
        .get_json()["id"]
    for _ in range(2):
        assert client.post("/jobs", json=sampler_job([(circuit(),)], session_id=session)) \
            .status_code == 200
    refused(client.post("/jobs", json=sampler_job([(circuit(),)], session_id=session)), 409,
            "already has 2 jobs", "QRS_MAX_JOBS_PER_SESSION")


def test_session_ttl_limit(make_client):
    refused(make_client(session_max_ttl=60).post("/sessions", json={"max_ttl": 61}), 400,
            "QRS_SESSION_MAX_TTL")


def test_stock_client_sees_the_shots_message(service):
    qc = circuit()
    backend = service.backend("fake_manila")
    with pytest.raises(Exception, match="max_shots"):
        SamplerV2(mode=backend).run([isa(qc, backend)], shots=200_000)


@pytest.mark.parametrize("options, field", [
    ({"max_execution_time": {"a": 1}}, "max_execution_time"),
    ({"max_execution_time": 0}, "max_execution_time"),
    ({"default_shots": "many"}, "default_shots"),
    ({"simulator": {"seed_simulator": [1]}}, "simulator"),
    ({"simulator": {"coupling_map": [[0, 1, 2]]}}, "simulator"),
    ({"simulator": "aer"}, "simulator"),
])
def test_options_of_the_wrong_type_answer_400(make_client, options, field):
    refused(make_client().post("/jobs", json=sampler_job([(circuit(),)], options)), 400,
            "params.options", field)


def test_circuits_outside_the_device_gate_set_are_refused(make_client):
    refused(make_client().post("/jobs", json=sampler_job([(bell(),)])), 400, "uses h",
            "fake_manila does not support", "Transpile")
