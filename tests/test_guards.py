"""Issue 17's payload findings, each sent exactly as the audit did: every path a payload
can take into a decoder is guarded, results are bounded, quotas hold.

Most checks submit to the real app (real store, real decoding in the real memory-limited
validation child) through Flask's test client; the last module-level test sends the same
attacks over HTTP to a server process and then runs a stock-client job on it.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import struct
import zlib

import numpy as np
import pytest
import requests
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.qpy import formats
from qiskit_ibm_runtime import QuantumProgram, SamplerV2
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from samplomatic.quantum_program import CircuitItem

from qrs.codec import decode_params, decode_runtime_json
from qrs.errors import InvalidInput
from qrs.store import NewJob

from .conftest import connect
from .support.payloads import (
    bell,
    deflate_zeros,
    isa,
    program_params,
    sweep_program,
    widen,
    wire,
    zlib_bomb,
)
from .support.server import ServerProcess
from .test_limits import circuit, qpy_bytes, refused, sampler_job

MANILA = FakeManilaV2()


def executor_job(params: dict, backend: str = "fake_manila") -> dict:
    return {"program_id": "executor", "backend": backend, "params": params}


@pytest.fixture(scope="module")
def good_program() -> dict:
    """A three-item program (two sweeps and a samplex item) as the client encodes it."""
    program, _, _ = sweep_program(10, MANILA)
    return program_params(program)


def still_up(client) -> None:
    """The app still accepts and answers after a refusal."""
    assert client.post("/jobs", json=sampler_job([(circuit(),)])).status_code == 200
    assert client.get("/health").status_code == 200


# --------------------------------------------------- item 2: executor params
def test_executor_tensor_zlib_bomb_is_refused_before_pydantic(make_client, good_program):
    """An 87 KB body whose circuit arguments inflate to 64 MiB (QRS_MAX_DECODED_MB=1)."""
    client = make_client(max_decoded_mb=1)
    params = copy.deepcopy(good_program)
    bomb = base64.b64encode(deflate_zeros(64 * 2**20)).decode()
    assert len(bomb) < 100_000
    params["quantum_program"]["items"][0]["circuit_arguments"] = {
        "data": bomb, "shape": [8 * 2**20, 1], "dtype": "f64"}
    refused(client.post("/jobs", json=executor_job(params)), 413,
            "params.quantum_program.items[0].circuit_arguments", "QRS_MAX_DECODED_MB")
    still_up(client)


def test_executor_passthrough_tensor_bomb_is_refused(make_client, good_program):
    client = make_client(max_decoded_mb=1)
    params = copy.deepcopy(good_program)
    params["quantum_program"]["passthrough_data"] = {"x": [{
        "data": base64.b64encode(deflate_zeros(64 * 2**20)).decode(),
        "shape": [64 * 2**20], "dtype": "u8"}]}
    refused(client.post("/jobs", json=executor_job(params)), 413,
            "params.quantum_program.passthrough_data.x[0]", "QRS_MAX_DECODED_MB")


def test_executor_qasm3_circuits_are_refused(make_client, good_program):
    """``qubit[1000000] q;`` allocated 290 MB in the QASM parser before any width check."""
    params = copy.deepcopy(good_program)
    qasm = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1000000] q;\n'
    params["quantum_program"]["circuits"] = {"data": [qasm] * 3}
    refused(make_client().post("/jobs", json=executor_job(params)), 400,
            "params.quantum_program.circuits", "OpenQASM 3", "QPY")


def _rewrite_program_qpy(params: dict, **widths) -> dict:
    circuits = params["quantum_program"]["circuits"]
    raw = zlib.decompress(base64.b64decode(circuits["b64_data"]))
    circuits["b64_data"] = base64.b64encode(zlib.compress(widen(raw, **widths))).decode()
    return params


@pytest.mark.parametrize("widths, words", [
    ({"qubits": 4_000_000_000, "index": 1}, ["circuit 1", "4000000000 qubits", "only 5"]),
    ({"clbits": 4_000_000_000}, ["circuit 0", "QRS_MAX_CLBITS"]),
], ids=["qubits", "clbits"])
def test_executor_qpy_headers_are_checked(make_client, good_program, widths, words):
    params = _rewrite_program_qpy(copy.deepcopy(good_program), **widths)
    refused(make_client().post("/jobs", json=executor_job(params)), 400,
            "params.quantum_program.circuits.b64_data", *words)


def _nested_circuits(text: str, rewrite) -> tuple[str, int]:
    """``text`` (samplex JSON, whose strings hold JSON in turn) with every
    ``circuit_base64`` QPY rewritten; returns the new text and how many were."""
    count = 0

    def visit(node):
        nonlocal count
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "circuit_base64":
                    node[key] = base64.b64encode(rewrite(base64.b64decode(value))).decode()
                    count += 1
                else:
                    node[key] = visit(value)
        elif isinstance(node, list):
            return [visit(value) for value in node]
        elif isinstance(node, str) and node[:1] in "{[":
            try:
                return json.dumps(visit(json.loads(node)))
            except ValueError:
                return node
        return node

    return json.dumps(visit(json.loads(text))), count


def test_qpy_inside_a_samplex_is_checked(make_client, good_program):
    params = copy.deepcopy(good_program)
    samplex = params["quantum_program"]["items"][2]["samplex"]
    samplex["samplex_json"], count = _nested_circuits(
        samplex["samplex_json"], lambda raw: widen(raw, qubits=4_000_000_000))
    assert count >= 1  # the samplex's parameter table travels as QPY
    refused(make_client().post("/jobs", json=executor_job(params)), 400,
            "params.quantum_program.items[2].samplex.samplex_json", "4000000000 qubits")


def test_pauli_lindblad_map_wider_than_the_backend_is_refused(make_client, good_program):
    params = copy.deepcopy(good_program)
    params["quantum_program"]["items"][2]["samplex_arguments"]["noise"] = {
        "sparse_terms": [["X", [0], 0.01]], "num_qubits": 2**31}
    refused(make_client().post("/jobs", json=executor_job(params)), 400,
            "samplex_arguments.noise", "Pauli-Lindblad map on 2147483648 qubits")


# --------------------------------------------------- item 2: primitive params
def test_bindings_array_key_bomb_is_refused(make_client):
    """A BindingsArray key holding an ndarray bomb: the decoder parses keys as JSON again."""
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rz(theta, 0)
    qc.measure_all()
    key = json.dumps(zlib_bomb(64 * 2**20))
    bindings = {"__type__": "BindingsArray",
                "__value__": {"shape": [1], "data": {key: wire(np.zeros((1, 1)))}}}
    body = sampler_job([(qc,)])
    body["params"]["pubs"][0].append(bindings)
    client = make_client(max_decoded_mb=1)
    refused(client.post("/jobs", json=body), 400, "BindingsArray", "not a JSON list of "
            "parameter names")
    body["params"]["pubs"][0][1]["__value__"]["data"] = {'["t"]': wire(np.zeros((1, 1)))}
    assert client.post("/jobs", json=body).status_code == 200  # a real key passes


def settings_operator(qubits: int) -> dict:
    """The audit's payload: a ``settings`` object building a dense Operator of a circuit."""
    wide = QuantumCircuit(qubits)
    wide.h(range(qubits))
    return {"__type__": "settings", "__module__": "qiskit.quantum_info.operators.operator",
            "__class__": "Operator", "__value__": {"data": wire(wide)}}


def test_settings_operator_is_refused_without_building_it(make_client):
    body = sampler_job([(circuit(),)])
    body["params"]["pubs"][0].append(settings_operator(16))  # 64 GiB if it were built
    client = make_client()
    refused(client.post("/jobs", json=body), 400, "'settings'", "not accepted")
    still_up(client)


@pytest.mark.parametrize("kind", ["_json", "Result", "spmatrix", "PrimitiveResult",
                                  "Instruction", "settings"])
def test_types_no_pub_needs_are_refused(make_client, kind):
    body = sampler_job([(circuit(),)])
    body["params"]["options"] = {"anything": {"__type__": kind, "__value__": {},
                                              "__module__": "qiskit_ibm_runtime",
                                              "__class__": "X"}}
    refused(make_client().post("/jobs", json=body), 400, f"{kind!r}", "not accepted")


def test_a_layer_noise_model_is_the_one_class_payload_decoded():
    """``resilience.layer_noise_model`` (IBM's NoiseLearner result, handed to an Estimator)
    is made of ``_json`` and ``settings`` objects: exactly its classes decode."""
    from qiskit.quantum_info import PauliList
    from qiskit_ibm_runtime.results.noise_learner import (LayerError, NoiseLearnerResult,
                                                          PauliLindbladError)

    layer = QuantumCircuit(2)
    layer.cx(0, 1)
    model = NoiseLearnerResult([LayerError(layer, [0, 1], PauliLindbladError(
        PauliList(["XX", "ZI"]), np.array([0.01, 0.02])))], {})
    params = {"pubs": [], "options": {"resilience": {"layer_noise_model": wire(model)}}}
    decoded = decode_runtime_json(params)["options"]["resilience"]["layer_noise_model"]
    assert isinstance(decoded, NoiseLearnerResult) and list(decoded[0].error.rates) == [.01, .02]
    sneaky = wire(model)
    sneaky["__value__"]["data"][0]["__class__"] = "NoiseLearnerResult"  # another class there
    with pytest.raises(InvalidInput, match="only the LayerError and PauliLindbladError"):
        decode_runtime_json({"pubs": [], "options": {"x": sneaky}})


def test_the_runner_decodes_with_the_same_restricted_decoder(make_client):
    """A job that reached the store without the API (an older server, a hand-made row)
    still never runs a ``settings`` constructor: the runner's decoder refuses it."""
    client = make_client(start_runner=False)
    registry = client.application.extensions["qrs"]
    params = sampler_job([(circuit(),)])["params"]
    params["pubs"][0].append(settings_operator(2))
    job = registry.store.add_job(NewJob(user_id="shared", program_id="sampler",
                                        backend="fake_manila", params_text=json.dumps(params)))
    registry.runner.drain()
    row = registry.store.get_job(job.id)
    assert row.status.value == "Failed" and "'settings'" in row.reason, row.reason
    with pytest.raises(InvalidInput, match="'settings'"):
        decode_params(params, "sampler")


# --------------------------------------------------- defence in depth: the child
def test_validation_child_memory_limit_answers_413_and_recovers(make_client):
    """An array that passes the guards (100 MiB of zeros, under QRS_MAX_DECODED_MB) but
    not the child's 32 MiB of address space: 413, then a fresh child takes the next job."""
    client = make_client(validation_memory_mb=32)  # auto: a big job goes to the child
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rz(theta, 0)
    qc.measure_all()
    body = sampler_job([(qc,)])
    body["params"]["pubs"][0].append(zlib_bomb(100 * 2**20))
    refused(client.post("/jobs", json=body), 413, "QRS_VALIDATION_MEMORY_MB")
    still_up(client)


def test_a_killed_validation_child_is_replaced(make_client):
    """The kernel's OOM killer (here: SIGKILL, as it sends) takes the child: the next
    submission gets a fresh one and is accepted."""
    client = make_client(validation_process="1")
    still_up(client)
    validator = client.application.extensions["qrs"].validator
    started, pid = validator.restarts, validator._proc.pid
    os.kill(pid, signal.SIGKILL)
    still_up(client)
    assert validator.restarts == started + 1 and validator._proc.pid != pid


def test_auto_mode_sends_only_big_jobs_to_the_child(make_client):
    client = make_client(validation_process="auto", validation_process_above_mb=1)
    validator = client.application.extensions["qrs"].validator
    still_up(client)  # a tiny job: checked here, no child started
    assert validator._proc is None
    big = sampler_job([(wide_readout(4096), None, 10)] * 2)  # 2 MiB of declared bits
    assert client.post("/jobs", json=big).status_code == 200
    assert validator._proc is not None and validator._proc.is_alive()


def test_validation_timeout_answers_400(make_client):
    """A job whose checking takes longer than the limit (a hundred 4096-clbit circuits
    to decode, against a limit of a microsecond)."""
    client = make_client(validation_process="1", validation_timeout_seconds=0.000_001)
    body = sampler_job([(wide_readout(4096), None, 10)] * 100)
    refused(client.post("/jobs", json=body), 400, "QRS_VALIDATION_TIMEOUT_SECONDS")


# --------------------------------------------------- item 3: result size
def wide_readout(clbits: int) -> QuantumCircuit:
    qc = QuantumCircuit(1, clbits)
    qc.sx(0)
    qc.measure(0, 0)
    return qc


def test_76_gib_bitarray_job_is_refused(make_client):
    """100 pubs × 100,000 shots × 65,536 clbits (a 76 GiB BitArray) was accepted."""
    body = sampler_job([(wide_readout(65_536), None, 100_000)] * 100)
    refused(make_client().post("/jobs", json=body), 400, "65536 classical bits",
            "QRS_MAX_CLBITS")


def test_result_size_limit_on_sampler_jobs(make_client):
    body = sampler_job([(wide_readout(4096), None, 100_000)] * 100)
    refused(make_client().post("/jobs", json=body), 400, "4,883 MiB", "QRS_MAX_RESULT_MB")


def test_result_size_limit_on_executor_jobs(make_client):
    readout = QuantumCircuit(1, 100)
    readout.sx(0)
    readout.measure([0] * 100, range(100))
    program = QuantumProgram(shots=100_000, items=[
        CircuitItem(readout, circuit_arguments=np.zeros((5, 0)))])
    client = make_client(max_result_mb=1)
    refused(client.post("/jobs", json=executor_job(program_params(program))), 400,
            "QRS_MAX_RESULT_MB", "boolean arrays")
    program = QuantumProgram(shots=100, items=[
        CircuitItem(readout, circuit_arguments=np.zeros((5, 0)))])
    assert client.post("/jobs", json=executor_job(program_params(program))).status_code == 200


# --------------------------------------------------- item 7: quotas
def padded(kib: int) -> QuantumCircuit:
    """A circuit whose params take about ``kib`` × 2/3 KiB: random hex metadata, which
    zlib halves and base64 grows by a third."""
    qc = circuit()
    qc.metadata = {"pad": os.urandom(kib * 512).hex()}
    return qc


def test_stored_bytes_per_user(make_client):
    client = make_client(max_stored_mb_per_user=1, start_runner=False)
    first = client.post("/jobs", json=sampler_job([(padded(900),)]))
    assert first.status_code == 200
    refused(client.post("/jobs", json=sampler_job([(padded(900),)])), 403,
            "QRS_MAX_STORED_MB_PER_USER", "Delete old jobs")
    assert client.delete(f"/jobs/{first.get_json()['id']}").status_code == 204
    assert client.post("/jobs", json=sampler_job([(padded(900),)])).status_code == 200


def test_finished_jobs_kept_per_user(make_client):
    client = make_client(max_finished_jobs_per_user=1, start_runner=False)
    job = client.post("/jobs", json=sampler_job([(circuit(),)])).get_json()["id"]
    client.application.extensions["qrs"].runner.drain()
    refused(client.post("/jobs", json=sampler_job([(circuit(),)])), 403, "1 finished jobs",
            "QRS_MAX_FINISHED_JOBS_PER_USER")
    assert client.delete(f"/jobs/{job}").status_code == 204
    assert client.post("/jobs", json=sampler_job([(circuit(),)])).status_code == 200


def test_open_sessions_per_user(make_client):
    client = make_client(max_open_sessions_per_user=2)
    ids = [client.post("/sessions", json={"mode": "batch"}).get_json()["id"] for _ in range(2)]
    refused(client.post("/sessions", json={"mode": "batch"}), 403, "2 open sessions",
            "QRS_MAX_OPEN_SESSIONS_PER_USER")
    assert client.delete(f"/sessions/{ids[0]}/close").status_code == 204
    assert client.post("/sessions", json={"mode": "dedicated"}).status_code == 200


def test_job_log_lines_are_cut(make_client):
    """Ignored options are logged as given: a megabyte of them makes one line, cut."""
    client = make_client(max_log_line_chars=200, start_runner=False)
    body = sampler_job([(circuit(),)], options={"not_an_option": "x" * 1_000_000})
    job = client.post("/jobs", json=body).get_json()["id"]
    client.application.extensions["qrs"].runner.drain()
    lines = client.get(f"/jobs/{job}/logs").get_data(as_text=True).splitlines()
    cut = [line for line in lines if "characters cut: QRS_MAX_LOG_LINE_CHARS" in line]
    assert cut, lines
    assert all(len(line) < 400 for line in lines)


# --------------------------------------------------- over HTTP, server stays up
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("guards") / "data",
                           env={"QRS_MAX_DECODED_MB": "1", "QRS_NOISE": "0"}).start()
    yield server
    server.stop()


def test_every_audited_payload_over_http_then_a_stock_client_job(server, good_program):
    executor_bomb = copy.deepcopy(good_program)
    executor_bomb["quantum_program"]["items"][0]["circuit_arguments"] = {
        "data": base64.b64encode(deflate_zeros(64 * 2**20)).decode(),
        "shape": [8 * 2**20, 1], "dtype": "f64"}
    qasm = copy.deepcopy(good_program)
    qasm["quantum_program"]["circuits"] = {"data": ["OPENQASM 3.0; qubit[1000000] q;"] * 3}
    key_bomb = sampler_job([(circuit(),)])
    key_bomb["params"]["pubs"][0].append({"__type__": "BindingsArray", "__value__": {
        "shape": [1], "data": {json.dumps(zlib_bomb(64 * 2**20)): wire(np.zeros((1, 1)))}}})
    operator = sampler_job([(circuit(),)])
    operator["params"]["pubs"][0].append(settings_operator(11))
    attacks = [(executor_job(executor_bomb), 413), (executor_job(qasm), 400),
               (key_bomb, 400), (operator, 400),
               (sampler_job([(wide_readout(65_536), None, 100_000)] * 100), 400)]
    for body, status in attacks:
        response = requests.post(server.url + "/jobs", json=body, timeout=120,
                                 headers={"Authorization": "Bearer x"})
        assert response.status_code == status, response.text[:300]
        assert response.json()["errors"][0]["message"]
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    backend = connect(server).backend("fake_manila")
    result = SamplerV2(mode=backend).run([isa(bell(), backend)], shots=50).result()
    assert sum(result[0].data.meas.get_counts().values()) == 50
    assert "unhandled error" not in server.log()


def test_qpy_headers_declaring_more_than_the_payload_holds_are_refused(make_client):
    """A header's instruction or metadata counts beyond the file's size: refused before
    the reader reserves memory for them."""
    raw = bytearray(qpy_bytes(circuit()))
    offset, = struct.unpack_from("!Q", raw, formats.FILE_HEADER_V10_SIZE + 1)
    fields = list(struct.unpack_from(formats.CIRCUIT_HEADER_V12_PACK, raw, offset))
    fields[formats.CIRCUIT_HEADER_V12._fields.index("metadata_size")] = 4 * 10**12
    struct.pack_into(formats.CIRCUIT_HEADER_V12_PACK, raw, offset, *fields)
    value = {"__type__": "QuantumCircuit",
             "__value__": base64.b64encode(zlib.compress(bytes(raw))).decode()}
    body = {"program_id": "sampler", "backend": "fake_manila",
            "params": {"pubs": [[value]], "version": 2}}
    refused(make_client().post("/jobs", json=body), 400, "metadata_size=4000000000000")
