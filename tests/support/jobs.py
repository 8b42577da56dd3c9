"""Helpers the job and session tests share: circuits of known cost, raw submissions, waits.

Long jobs are many short pubs of a circuit with mid-circuit measurements (Aer must
simulate every shot), so a job runs for seconds but stops within a pub of being
cancelled or timed out (the runner stops jobs between pubs).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

import requests
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

from .payloads import isa
from .server import ServerProcess

#: Shots per pub of a busy circuit: about 0.1 s of Aer time per pub on one core.
BUSY_SHOTS = 1000


def busy_circuit(backend) -> QuantumCircuit:
    """Five qubits measured after every layer: no sampling shortcut, ~0.1 ms per shot."""
    qc = QuantumCircuit(5, 5)
    for _ in range(6):
        for q in range(5):
            qc.rx(0.3 + q, q)
        for q in range(4):
            qc.cx(q, q + 1)
        qc.measure(range(5), range(5))
    return isa(qc, backend)


def busy_job(backend_or_mode, pubs: int, **options: Any):
    """A sampler job of ``pubs`` busy pubs (~0.1 s each) submitted by the stock client."""
    backend = getattr(backend_or_mode, "_backend", backend_or_mode)
    circuit = busy_circuit(backend)
    sampler = SamplerV2(mode=backend_or_mode)
    for name, value in options.items():
        setattr(sampler.options, name, value)
    return sampler.run([(circuit, None, BUSY_SHOTS)] * pubs)


def cancel_quietly(jobs: Iterable) -> None:
    """Cancel what may still run, so a failed test leaves no busy job to the next one."""
    for job in jobs:
        try:
            job.cancel()
        except RuntimeInvalidStateError:
            pass  # already final


def post_job(server: ServerProcess, backend: str, params_text: str,
             program_id: str = "sampler", **fields: Any) -> requests.Response:
    """``POST /jobs`` the way the client does it, without the client's job object."""
    body = json.dumps({"program_id": program_id, "backend": backend, **fields})
    body = body[:-1] + ', "params": ' + params_text + "}"
    return requests.post(f"{server.url}/api/v1/jobs", data=body, timeout=30,
                         headers={"Content-Type": "application/json"})


def raw_job(server: ServerProcess, job_id: str) -> dict:
    """``GET /jobs/<id>`` as JSON: the wire state (``state.reason_code`` etc.)."""
    return requests.get(f"{server.url}/api/v1/jobs/{job_id}?exclude_params=true",
                        timeout=30).json()


def times(job) -> tuple[datetime, datetime]:
    """(running, finished) timestamps from ``job.metrics()``."""
    stamps = job.metrics()["timestamps"]
    return (datetime.fromisoformat(stamps["running"].replace("Z", "+00:00")),
            datetime.fromisoformat(stamps["finished"].replace("Z", "+00:00")))
