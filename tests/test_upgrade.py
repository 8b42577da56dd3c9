"""Upgrades keep data: a data directory written by QRS 0.1.0, opened by this release.

``tests/fixtures/data-v0.1`` was made by ``tests/fixtures/make_data_v0_1.py`` running the
0.1.0 release: keys (one revoked), jobs in every state with real Sampler and Estimator
results, sessions and a batch. A copy of it is served by a real server of this release,
and the stock client reads everything back: every job's state, result and log, the
sessions, the keys. The Queued job and the Running one (claimed by a worker that no
longer exists) then run to completion.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import requests
from qiskit_ibm_runtime import Batch, Session
from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

from qrs.store import SCHEMA_VERSION, schema_version
from qrs.store.migrations import BACKUP_DIR

from .conftest import connect
from .support.polling import wait_until
from .support.server import ServerProcess

FIXTURE = Path(__file__).parent / "fixtures" / "data-v0.1"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
JOBS, KEYS, SESSIONS = MANIFEST["jobs"], MANIFEST["keys"], MANIFEST["sessions"]
#: The client's names for the wire statuses.
CLIENT_STATUS = {"Completed": "DONE", "Failed": "ERROR", "Cancelled": "CANCELLED",
                 "Queued": "QUEUED", "Running": "RUNNING"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This release's server on a copy of the 0.1.0 directory (the committed one stays)."""
    data = tmp_path_factory.mktemp("upgrade") / "data"
    shutil.copytree(FIXTURE, data)
    (data / "manifest.json").unlink()
    proc = ServerProcess(data, env={"QRS_NOISE": "1", "QRS_HEARTBEAT_SECONDS": "0.5"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def alice(server):
    return connect(server, token=KEYS["alice"]["key"])


def test_the_directory_is_backed_up_and_migrated_in_place(server):
    assert schema_version(server.data_dir) == SCHEMA_VERSION
    backups = sorted((server.data_dir / BACKUP_DIR).iterdir())
    assert len(backups) == 1
    old = sqlite3.connect(backups[0])
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    assert old.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == len(JOBS)
    old.close()


def test_keys_still_authenticate_and_the_revoked_one_stays_revoked(server):
    def token(user: str) -> requests.Response:
        return requests.post(server.url + "/identity/token", timeout=30,
                             data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey",
                                   "apikey": KEYS[user]["key"]})

    assert token("alice").status_code == 200 and token("root").status_code == 200
    refused = token("mallory")
    assert refused.status_code == 401, refused.text
    for user, status in (("alice", 200), ("mallory", 401)):  # the key itself, no token
        assert requests.get(server.url + "/api/v1/backends", timeout=30, headers={
            "Authorization": f"apikey {KEYS[user]['key']}"}).status_code == status
    root = token("root").json()["access_token"]
    listing = requests.get(server.url + "/api/v1/jobs?limit=100", timeout=30,
                           headers={"Authorization": f"Bearer {root}"}).json()
    assert {job["id"] for job in listing["jobs"]} == {job["id"] for job in JOBS.values()}


def test_every_finished_job_serves_its_state_result_and_log(alice):
    for name, expected in JOBS.items():
        if expected["status"] in ("Queued", "Running"):
            continue  # they move on once served: next test
        job = alice.job(expected["id"])
        assert job.status() == CLIENT_STATUS[expected["status"]], name
        assert job.session_id == expected.get("session"), name
        assert "Job received and queued." in job.logs(), name
    counts = alice.job(JOBS["sampler"]["id"]).result()[0].data.meas.get_counts()
    assert sum(counts.values()) == JOBS["sampler"]["shots"]
    # Stored counts of a noisy Bell pair (fixed data: no sampling happens here).
    assert counts.get("00", 0) + counts.get("11", 0) > 0.8 * JOBS["sampler"]["shots"]
    assert sorted(alice.job(JOBS["sampler"]["id"]).tags) == ["bell", "fixture"]
    evs = alice.job(JOBS["estimator"]["id"]).result()[0].data.evs
    assert np.all(np.asarray(evs) > 0.6)  # <ZZ>, <XX> of a noisy Bell pair, as stored
    for name in ("in_session", "batch_0", "batch_1"):
        assert sum(alice.job(JOBS[name]["id"]).result()[0].data.meas.get_counts().values()) > 0
    with pytest.raises(RuntimeJobFailureError, match="needs about 16 MiB"):
        alice.job(JOBS["failed"]["id"]).result()
    assert "Cancelled by the user" in alice.job(JOBS["cancelled"]["id"]).logs()


def test_the_queued_and_the_orphaned_running_job_of_0_1_complete(alice):
    for name in ("queued", "running"):
        job = alice.job(JOBS[name]["id"])
        wait_until(lambda: job.status() == "DONE", timeout=120, interval=0.2,
                   what=f"the 0.1 {name} job to complete")
        assert sum(job.result()[0].data.meas.get_counts().values()) == JOBS[name]["shots"]
    log = alice.job(JOBS["running"]["id"]).logs()
    assert "stopped responding; job re-queued" in log  # its lease had run out long ago


def test_sessions_and_the_batch_are_served(alice):
    closed = Session.from_id(SESSIONS["closed_session"]["id"], service=alice).details()
    assert closed["state"] == "closed" and closed["mode"] == "dedicated"
    batch = Batch.from_id(SESSIONS["batch"]["id"], service=alice).details()
    assert batch["state"] == "closed" and batch["mode"] == "batch"
    opened = Session.from_id(SESSIONS["open_session"]["id"], service=alice).details()
    # Open when written; closed by now if its 8-hour maximum TTL has passed since.
    assert opened["state"] in ("open", "closed") and opened["mode"] == "dedicated"
