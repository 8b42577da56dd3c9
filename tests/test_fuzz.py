"""Property-based fuzzing of every endpoint, plus hand-made malicious payloads.

Part one drives the real app in-process (Flask's test client: real store, real decoding,
real Aer for whatever gets accepted) with hypothesis-generated methods, paths, queries,
headers and bodies, from random JSON to mutated QPY and ``.npy`` payloads inside
otherwise valid jobs. Invariants: never a 5xx, errors in IBM's shape, and no job lost —
another user's jobs are untouched, and every job the fuzzer got accepted still exists
and runs to a final state.

Part two sends hand-made attacks to a real server process over HTTP (zlib bomb, 1 GiB
declared array, deeply nested JSON, invalid UTF-8, huge headers, lying Content-Length)
and checks the server still runs a stock-client job afterwards.

Bounded for CI (``QRS_FUZZ_EXAMPLES``, default 150 per property, derandomized);
``make fuzz`` runs many more. The number of generated cases is printed at the end.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import socket
import zlib
from collections import Counter
from urllib.parse import quote

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import SamplerV2

from qrs import create_app
from qrs.auth import hash_key
from qrs.config import Config
from qrs.registry import Registry

from .conftest import connect
from .support.payloads import bell, isa, wire
from .support.server import ServerProcess

EXAMPLES = int(os.environ.get("QRS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("QRS_FUZZ_EXAMPLES") is None,
                suppress_health_check=list(HealthCheck))
CASES: Counter = Counter()  # "cases" (generated requests) and "attacks" (hand-made)
STATUSES: Counter = Counter()  # status code → generated requests that got it


@pytest.fixture(scope="module", autouse=True)
def report_case_count(request):
    """Print how many fuzz cases ran, and the status codes they got, past capture."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(STATUSES.items()))
        server_errors = sum(n for status, n in STATUSES.items() if status >= 500)
        print(f"\n[fuzz] {CASES['cases']} generated requests, status codes {{{statuses}}}; "
              f"{CASES['attacks']} hand-made attacks; {server_errors} answered 5xx")


# ---------------------------------------------------------------- valid material
def _circuits():
    """ISA circuits for fake_manila (5 qubits), as a user would transpile them."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    theta = Parameter("theta")
    rotated = QuantumCircuit(1)
    rotated.rx(theta, 0)
    rotated.measure_all()
    return isa(bell(), backend), isa(rotated, backend), isa(bell(measure=False), backend)


BELL, ROTATED, BARE = _circuits()
VALID_PUBS = {
    "sampler": [wire((BELL,)), wire((BELL, None, 64)), wire((ROTATED, np.array([[0.1], [2.0]])))],
    "estimator": [wire((BARE, SparsePauliOp(["IIIZZ", "IIIXX"]))),
                  wire((BARE, [SparsePauliOp("IIIZI"), {"IIIIZ": 1.0}], None, 0.1))],
}


def _raw(value: dict) -> bytes:
    return zlib.decompress(base64.b64decode(value["__value__"]))


QPY_BYTES = _raw(VALID_PUBS["sampler"][0][0])
NPY_BYTES = _raw(VALID_PUBS["sampler"][2][1])
DECODER_TYPES = ["datetime", "complex", "ndarray", "set", "QuantumCircuit", "Parameter",
                 "Instruction", "settings", "_json", "Result", "spmatrix", "ObservablesArray",
                 "BindingsArray", "BitArray", "DataBin", "EstimatorPubResult",
                 "SamplerPubResult", "PubResult", "PrimitiveResult", "NoiseLearnerResult",
                 "DoubleSliceSpan", "TwirledSliceSpanV2", "TwirledSliceSpan", "ExecutionSpan",
                 "ExecutionSpanCollection", "ExecutionSpans", "PauliLindbladMap", "to_json",
                 "NoiseModel"]


# ---------------------------------------------------------------- strategies
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=16)


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few bytes replaced, inserted, or cut off."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["replace", "insert", "truncate", "int"]))
        if how == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "truncate":
            del data[at:]
        else:  # overwrite 4 bytes with an extreme integer (sizes, counts, widths)
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                                    b"\x00\x00\x00\x00", b"\x00\x01\x00\x00"]))
    return bytes(data)


def b64(data: bytes, compress: bool) -> str:
    return base64.b64encode(zlib.compress(data) if compress else data).decode()


payload_strings = st.one_of(
    st.builds(b64, mutated(QPY_BYTES), st.booleans()),
    st.builds(b64, mutated(NPY_BYTES), st.booleans()),
    st.builds(b64, st.binary(max_size=64), st.booleans()),
    st.text(max_size=30),
)
typed_values = st.fixed_dictionaries(
    {"__type__": st.sampled_from(DECODER_TYPES),
     "__value__": payload_strings | json_values},
    optional={"__module__": st.sampled_from(["qiskit.quantum_info.operators.symplectic",
                                             "qiskit.quantum_info.operators", "os"]),
              "__class__": st.sampled_from(["SparsePauliOp", "Pauli", "Operator", "system"])})
pub_items = typed_values | json_values


@st.composite
def pubs(draw, program: str):
    """A valid pub, maybe with one item swapped for a typed or random value."""
    pub = list(draw(st.sampled_from(VALID_PUBS[program])))
    if draw(st.booleans()):
        pub[draw(st.integers(0, len(pub) - 1))] = draw(pub_items)
    if draw(st.booleans()):
        pub.append(draw(pub_items))
    return pub


@st.composite
def job_bodies(draw):
    program = draw(st.sampled_from(["sampler", "estimator"]))
    params = {"pubs": draw(st.lists(pubs(program), min_size=0, max_size=3)), "version": 2,
              "options": draw(st.fixed_dictionaries({}, optional={
                  "default_shots": st.integers(-5, 300_000) | json_values,
                  "default_precision": st.floats() | json_values,
                  "simulator": st.fixed_dictionaries({}, optional={
                      "seed_simulator": st.integers(-1, 2**64) | json_values,
                      "noise_model": typed_values | json_values}),
                  "max_execution_time": st.integers(-1, 10**9) | json_values}))}
    body = {"program_id": draw(st.sampled_from([program, program, "circuit-runner"])),
            "backend": draw(st.sampled_from(["fake_manila", "fake_athens", "fake_nope", ""])),
            "params": draw(st.just(params) | json_values)}
    for key in ("tags", "session_id", "cost", "private", "log_level"):
        if draw(st.booleans()):
            body[key] = draw(json_values)
    return body


PATHS = [("POST", "/identity/token"), ("GET", "/backends"),
         ("GET", "/backends/{backend}/configuration"), ("GET", "/backends/{backend}/properties"),
         ("GET", "/backends/{backend}/status"), ("POST", "/jobs"), ("GET", "/jobs"),
         ("GET", "/jobs/{job}"), ("GET", "/jobs/{job}/results"), ("POST", "/jobs/{job}/cancel"),
         ("DELETE", "/jobs/{job}"), ("GET", "/jobs/{job}/logs"), ("GET", "/jobs/{job}/metrics"),
         ("PUT", "/jobs/{job}/tags"), ("GET", "/instances/usage"),
         ("GET", "/instances/configuration"), ("POST", "/sessions"),
         ("GET", "/sessions/{session}"), ("PATCH", "/sessions/{session}"),
         ("DELETE", "/sessions/{session}/close"), ("GET", "/health"), ("GET", "/ready")]
QUERY_KEYS = ["limit", "offset", "backend", "pending", "program", "tags", "session_id",
              "created_after", "created_before", "sort", "exclude_params", "include_mocks",
              "updated_before", "calibration_id"]


def record(method: str, path: str, status: int, body: object) -> None:
    """Count one generated request and check its answer: no 5xx, IBM-shaped errors."""
    CASES["cases"] += 1
    STATUSES[status] += 1
    assert status < 500, (method, path, body)
    if status >= 400 and isinstance(body, dict):
        assert isinstance(body["errors"][0]["message"], str) and "trace" in body, body


class FuzzTarget:
    """The app under fuzz, the ids it knows, and the jobs that must not get lost."""

    def __init__(self, tmp_path) -> None:
        config = Config(data_dir=str(tmp_path / "data"), start_runner=False, status_wait_ms=0,
                        max_queue_per_user=100_000)
        self.app = create_app(config)
        self.client = self.app.test_client()
        self.registry: Registry = self.app.extensions["qrs"]
        store = self.registry.store
        for user, key in (("fuzzer", "fuzzer-key"), ("victim", "victim-key")):
            store.add_api_key(user, hash_key(key))
        self.auth = {user: {"Authorization": "Bearer " + self.client.post(
            "/identity/token", data={"apikey": f"{user}-key"}).get_json()["access_token"]}
            for user in ("fuzzer", "victim")}
        self.victim_jobs = [self.submit("victim", {"program_id": "sampler",
                                                   "backend": "fake_manila",
                                                   "params": {"pubs": [pub], "version": 2}})
                            for pub in VALID_PUBS["sampler"]]
        self.registry.runner.drain()
        self.victim_results = {job: self.client.get(f"/jobs/{job}/results",
                                                    headers=self.auth["victim"]).data
                               for job in self.victim_jobs}
        self.victim_queued = self.submit("victim", {"program_id": "sampler",
                                                    "backend": "fake_manila",
                                                    "params": {"pubs": [VALID_PUBS["sampler"][1]],
                                                               "version": 2}})
        self.victim_session = self.client.post("/sessions", json={"mode": "batch"},
                                               headers=self.auth["victim"]).get_json()["id"]
        self.own_session = self.client.post("/sessions", json={"mode": "dedicated"},
                                            headers=self.auth["fuzzer"]).get_json()["id"]
        self.own_jobs = [self.submit("fuzzer", {"program_id": program, "backend": "fake_manila",
                                                "params": {"pubs": [VALID_PUBS[program][0]]}})
                         for program in ("sampler", "estimator")]
        self.accepted: set[str] = set(self.own_jobs)
        self.deleted: set[str] = set()

    def submit(self, user: str, body: dict) -> str:
        response = self.client.post("/jobs", json=body, headers=self.auth[user])
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["id"]

    def request(self, method: str, path: str, **kwargs):
        response = self.client.open(path, method=method, **kwargs)
        record(method, path, response.status_code, response.get_json(silent=True)
               if response.is_json and method != "HEAD" else response.get_data(as_text=True))
        if method == "POST" and path.rstrip("/").endswith("/jobs") \
                and response.status_code == 200:
            self.accepted.add(response.get_json()["id"])
        if method == "DELETE" and response.status_code == 204 and "/jobs/" in path:
            self.deleted.add(path.rsplit("/", 1)[-1])
        return response

    def check_nothing_lost(self) -> None:
        """Every job is where it should be, and every live job runs to a final state."""
        self.registry.runner.drain(timeout=120)
        victim = self.auth["victim"]
        for job, result in self.victim_results.items():
            assert self.client.get(f"/jobs/{job}/results", headers=victim).data == result
        queued = self.client.get(f"/jobs/{self.victim_queued}", headers=victim).get_json()
        assert queued["status"] == "Completed", queued
        for job in self.accepted - self.deleted:
            state = self.client.get(f"/jobs/{job}", headers=self.auth["fuzzer"]).get_json()
            assert state["status"] in ("Completed", "Failed", "Cancelled"), state
        assert self.client.get("/health").status_code == 200


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return FuzzTarget(tmp_path_factory.mktemp("fuzz"))


def path_ids(target: FuzzTarget):
    """Ids a path may name: real ones (own, another user's) and junk."""
    jobs = st.sampled_from(target.own_jobs + target.victim_jobs)  # fixed: hypothesis replays
    junk = st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe=""))
    return {"job": jobs | junk, "session": st.sampled_from(
        [target.victim_session, target.own_session]) | junk,
        "backend": st.sampled_from(["fake_manila", "fake_sherbrooke"]) | junk}


@st.composite
def requests_for(draw, target: FuzzTarget):
    method, template = draw(st.sampled_from(PATHS))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                       "OPTIONS", "TRACE", "PROPFIND"]))
    ids = path_ids(target)
    path = draw(st.sampled_from(["", "/api/v1"])) + template.format(
        job=draw(ids["job"]), session=draw(ids["session"]), backend=draw(ids["backend"]))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS) | st.text(max_size=8),
                                 st.text(max_size=12) | st.integers().map(str), max_size=3))
    kind = draw(st.sampled_from(["job", "json", "bytes", "form", "none"]))
    kwargs: dict = {"query_string": query, "headers": dict(target.auth["fuzzer"])}
    if kind == "job":
        kwargs["json"] = draw(job_bodies())
    elif kind == "json":
        kwargs["json"] = draw(json_values)
    elif kind == "bytes":
        kwargs["data"] = draw(st.binary(max_size=200))
        kwargs["content_type"] = draw(st.sampled_from(["application/json", "text/plain",
                                                       "application/octet-stream", ""]))
    elif kind == "form":
        kwargs["data"] = draw(st.dictionaries(st.sampled_from(["apikey", "grant_type", "x"]),
                                              st.text(max_size=20), max_size=3))
    return method, path, kwargs


def fuzz_every_endpoint(target) -> None:
    """Random requests (method, path, query, body, headers) at every endpoint of ``target``."""
    @FUZZ
    @given(st.data())
    def run(data):
        method, path, kwargs = data.draw(requests_for(target))
        target.request(method, path, **kwargs)

    run()


def test_fuzz_every_endpoint(target):
    fuzz_every_endpoint(target)


def test_fuzz_job_submissions(target):
    """Jobs only: random and mutated payloads inside otherwise valid submissions."""
    @FUZZ
    @given(body=job_bodies(), prefix=st.sampled_from(["", "/api/v1"]))
    def run(body, prefix):
        target.request("POST", prefix + "/jobs", json=body, headers=target.auth["fuzzer"])

    run()


def test_fuzz_authorization_headers(target):
    @FUZZ
    @given(header=st.one_of(
        st.text(max_size=60),
        st.builds(lambda s: "Bearer " + s, st.text(max_size=200)),
        st.builds(lambda parts: "Bearer " + ".".join(parts),
                  st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=40),
                           min_size=3, max_size=3)),
        st.builds(lambda s: "apikey " + s, st.text(max_size=60))))
    def run(header):
        try:
            headers = {"Authorization": header}
            response = target.request("GET", "/api/v1/jobs", headers=headers)
        except ValueError:  # werkzeug refuses header values with newlines client-side
            return
        assert response.status_code == 401

    run()


def test_fuzz_lost_no_job(target):
    """Runs after the fuzzers above (file order): everything still in place."""
    target.check_nothing_lost()


# ---------------------------------------------------------------- hand-made attacks
@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def attacked(request, tmp_path_factory):
    """A live server (the dev server, and gunicorn as ``make run`` starts it) with one
    stock-client job submitted before the attacks."""
    server = ServerProcess(tmp_path_factory.mktemp("attacked") / "data",
                           env={"QRS_MAX_BODY_MB": "8"},
                           gunicorn=request.param == "gunicorn").start()
    service = connect(server)
    backend = service.backend("fake_manila")
    job = SamplerV2(mode=backend).run([BELL], shots=100)  # submitted before the attacks
    yield server, service, job
    server.stop()


def post_raw(server: ServerProcess, body: bytes, content_type: str = "application/json",
             **headers) -> requests.Response:
    CASES["attacks"] += 1
    return requests.post(server.url + "/api/v1/jobs", data=body, timeout=60,
                         headers={"Content-Type": content_type,
                                  "Authorization": "Bearer x", **headers})


def job_with(pub_item: dict) -> bytes:
    return json.dumps({"program_id": "sampler", "backend": "fake_manila",
                       "params": {"pubs": [[VALID_PUBS["sampler"][0][0], pub_item]],
                                  "version": 2}}).encode()


@functools.cache
def zlib_bomb(inflated_bytes: int) -> dict:
    """A valid ``.npy`` array of zeros of ``inflated_bytes`` bytes, zlib-compressed."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (inflated_bytes // 8,)})
    deflater = zlib.compressobj(9)
    out = [deflater.compress(header.getvalue())]
    zeros = bytes(2**24)
    for _ in range(inflated_bytes // len(zeros)):
        out.append(deflater.compress(zeros))
    out.append(deflater.flush())
    return {"__type__": "ndarray", "__value__": base64.b64encode(b"".join(out)).decode()}


def test_zlib_bomb_is_refused(attacked):
    server = attacked[0]
    response = post_raw(server, job_with(zlib_bomb(2**30)))  # 1 GiB from ~1 MiB
    assert response.status_code == 413
    assert "QRS_MAX_DECODED_MB" in response.json()["errors"][0]["message"]


def test_declared_1gb_array_is_refused(attacked):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**27,)})
    value = {"__type__": "ndarray",
             "__value__": base64.b64encode(zlib.compress(header.getvalue() + bytes(8))).decode()}
    response = post_raw(attacked[0], job_with(value))
    assert response.status_code == 400
    assert "declares shape (134217728,)" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json(attacked, depth):
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                 json.dumps({"program_id": "sampler", "backend": "fake_manila",
                             "params": {"pubs": []}})[:-2] + ', "x": ' + "[" * depth
                 + "]" * depth + "}}"):
        response = post_raw(attacked[0], body.encode())
        assert response.status_code == 400, response.text


def test_invalid_utf8_and_encodings(attacked):
    for body in (b"\xff\xfe\xfa{", b'{"program_id": "\xc3\x28"}', b"\x00" * 64,
                 '{"program_id": "sampler"}'.encode("utf-16")):
        response = post_raw(attacked[0], body)
        assert response.status_code == 400, response.text
    token = requests.post(attacked[0].url + "/identity/token", data=b"apikey=\xff\xfe",
                          headers={"Content-Type": "application/x-www-form-urlencoded"},
                          timeout=10)
    CASES["attacks"] += 1
    assert token.status_code < 500


def test_body_over_limit_413(attacked):
    response = post_raw(attacked[0], b" " * (9 * 2**20))
    assert response.status_code == 413
    assert "QRS_MAX_BODY_MB" in response.json()["errors"][0]["message"]


def raw_http(server: ServerProcess, data: bytes) -> bytes:
    """Send raw bytes to the server; return what it answers (maybe nothing: a server may
    answer early and close while the rest is still being sent)."""
    CASES["attacks"] += 1
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # broken pipe, reset, or already closed by the server
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_huge_and_broken_requests(attacked):
    server = attacked[0]
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    cases = [
        b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-%d: 1\r\n" % i for i in range(500))
        + b"\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        b"POST /jobs HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
        b"Content-Length: 99999999999999999999\r\n\r\n{}",
        b"POST /jobs HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
        b"Content-Length: -5\r\n\r\n{}",
        b"POST /jobs HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100),  # a TLS hello
        b"GARBAGE\r\n\r\n",
    ]
    for data in cases:
        answer = raw_http(server, data)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        assert status < 500, answer[:300]
    chunked = requests.post(server.url + "/api/v1/jobs", timeout=60,
                            data=iter([b" " * 2**20] * 9),  # 9 MiB, no Content-Length
                            headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer x"})
    CASES["attacks"] += 1
    assert chunked.status_code in (400, 413), chunked.text


class HttpTarget:
    """The same generated requests, sent over HTTP to a live server (open mode)."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = server.url
        self.auth = {"fuzzer": {"Authorization": "Bearer fuzz"}}
        job = requests.post(self.base + "/jobs", headers=self.auth["fuzzer"], timeout=30, json={
            "program_id": "sampler", "backend": "fake_manila",
            "params": {"pubs": [VALID_PUBS["sampler"][0]]}}).json()["id"]
        self.victim_jobs = self.own_jobs = [job]  # its own, so the job in ``attacked`` stays
        self.victim_session = self.own_session = requests.post(
            self.base + "/sessions", json={"mode": "batch"}, headers=self.auth["fuzzer"],
            timeout=30).json()["id"]

    def request(self, method: str, path: str, query_string=None, headers=None,
                content_type=None, **body) -> None:
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        if "json" in body:  # as Flask's test client does: Python's JSON, Infinity included
            body["data"] = json.dumps(body.pop("json"))
            headers["Content-Type"] = "application/json"
        response = requests.request(method, self.base + path, params=query_string,
                                    headers=headers, timeout=30, allow_redirects=False, **body)
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        record(method, path, response.status_code, answer)


def test_fuzz_over_http(attacked):
    fuzz_every_endpoint(HttpTarget(attacked[0]))


def test_server_survives_and_loses_nothing(attacked):
    """After every attack: the job submitted before still completes, and a new one runs."""
    server, service, job = attacked
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    fresh = SamplerV2(mode=service.backend("fake_manila")).run([BELL], shots=50)
    assert sum(fresh.result()[0].data.meas.get_counts().values()) == 50
    assert server.proc.poll() is None
    assert "unhandled error" not in server.log_path.read_text(errors="replace")
