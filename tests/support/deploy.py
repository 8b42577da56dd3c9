"""Raw-HTTP load and store inspection shared by tests/test_deploy.py and benchmarks/soak.py.

Jobs are built once with the client's own ``RuntimeEncoder`` (exactly the ``params``
``SamplerV2.run`` sends) and POSTed as raw JSON, so thousands of submissions cost the
test process almost nothing. The store is read with a plain read-only SQLite connection:
the tests check what was recorded, not what an endpoint says about it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import requests

from .polling import wait_until

BACKEND = "fake_manila"
FINAL = ("Completed", "Failed", "Cancelled")


def sampler_body(num_pubs: int = 1, shots: int = 16, depth: int = 0) -> str:
    """A ``POST /jobs`` body: Bell circuits for fake_manila (``depth`` extra CX pairs make
    each pub slower), encoded like the client does."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from .payloads import bell, isa, job_body, sampler_params

    circuit = bell(measure=False)
    for _ in range(2 * depth):
        circuit.cx(0, 1)
    circuit.measure_all()
    circuit = isa(circuit, FakeManilaV2(), optimization_level=0)
    return job_body(sampler_params(circuit, shots, num_pubs=num_pubs), backend=BACKEND)


def submit(session: requests.Session, url: str, body: str,
           idempotency_key: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return session.post(f"{url}/api/v1/jobs", data=body, headers=headers, timeout=60)


def submit_many(url: str, body: str, count: int, threads: int = 8) -> list[str]:
    """Submit ``count`` jobs from ``threads`` client threads; the job ids, in any order."""
    local = threading.local()

    def one(_: int) -> str:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = submit(local.session, url, body)
        answer.raise_for_status()
        return answer.json()["id"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def fetch_results(url: str, job_ids: Iterable[str], threads: int = 8) -> dict[str, tuple[int, str, str]]:
    """``job id → (status code, body, serving worker pid)`` of ``GET /jobs/<id>/results``.

    Each request opens its own connection, so gunicorn hands them to all its workers.
    """
    def one(job_id: str) -> tuple[str, tuple[int, str, str]]:
        answer = requests.get(f"{url}/api/v1/jobs/{job_id}/results", timeout=60,
                              headers={"Connection": "close"})
        return job_id, (answer.status_code, answer.text, answer.headers.get("X-QRS-Worker", ""))

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, job_ids))


class StoreReader:
    """Read-only look at a server's SQLite file (WAL readers never block its writers)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "qrs.sqlite3"

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def statuses(self, job_ids: Iterable[str] | None = None) -> dict[str, str]:
        rows = dict(self.query("SELECT id, status FROM jobs"))
        return rows if job_ids is None else {i: rows.get(i, "missing") for i in job_ids}

    def job(self, job_id: str) -> dict:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
            return dict(row) if row else {}
        finally:
            db.close()

    def log_lines(self, job_id: str) -> list[str]:
        return [r[0] for r in self.query(
            "SELECT message FROM job_logs WHERE job_id=? ORDER BY ts, rowid", (job_id,))]

    def started_counts(self) -> dict[str, int]:
        """``job id → number of "Job started" log lines`` (one per execution)."""
        return dict(self.query("SELECT job_id, COUNT(*) FROM job_logs "
                               "WHERE message LIKE 'Job started on worker %' GROUP BY job_id"))

    def wait(self, predicate, timeout: float, every: float = 0.2):
        """Poll ``predicate(self)`` until it returns something truthy; that value, or raise."""
        return wait_until(lambda: predicate(self), timeout, every,
                          what=getattr(predicate, "__name__", "the store"))


def lock_waits(log_text: str) -> list[float]:
    """Milliseconds of each logged SQLite write-lock wait (the store logs waits over 100 ms)."""
    return [float(m) for m in re.findall(r"sqlite write lock waited (\d+) ms", log_text)]


def worker_pid(reader: StoreReader, job_id: str) -> int:
    """The pid inside the ``host:pid:xxxx`` worker id that claimed the job."""
    return int(reader.job(job_id)["claimed_by"].split(":")[-2])


def gunicorn_workers(master_pid: int) -> set[int]:
    """Live child processes of the gunicorn master (its workers)."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master_pid and fields[0] != "Z":
                children.add(int(entry))
    return children


def new_key() -> str:
    return uuid.uuid4().hex
