"""Scenario parsing, the scenario state shared by processes, the journal, the key guard.

No server here: these are the pure parts of ``qrs.testkit`` and ``qrs.keyguard``. The
state is shared through files, so it is checked with real separate processes.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import socket
import subprocess
import sys
import textwrap

import pytest

from qrs.testkit.journal import Journal
from qrs.testkit.scenario import ScenarioError, load_file, parse, to_json
from qrs.testkit.state import ScenarioState

LOCALQPU_README_SCENARIO = {  # the example of localqpu 0.3.0's README, verbatim
    "seed": 42,
    "queue": {"delay_seconds": 0, "polls_before_running": 1},
    "failures": {"rate": 0.0, "reason": "Simulated failure", "reason_code": 9999},
    "next_jobs": [
        {"outcome": "failed", "reason": "QPU calibration in progress", "reason_code": 1517},
        {"outcome": "cancelled"},
    ],
    "backends": {"ibm_brisbane": {"status": "offline", "queue_length": 120}},
    "usage": {"limit_seconds": 600, "consumed_seconds": 600},
    "auth": {"reject_tokens": False},
    "noise": False,
}


def test_localqpu_scenarios_read_the_same_and_round_trip():
    scenario = parse(LOCALQPU_README_SCENARIO)
    assert scenario.next_jobs[0].reason == "QPU calibration in progress"
    assert scenario.next_jobs[1].outcome == "cancelled"
    assert scenario.offline("ibm_brisbane") and scenario.usage.reached(0)
    assert parse(to_json(scenario)) == scenario
    faults = parse({"http_faults": [
        {"method": "post", "path": "/api/v1/jobs", "status": 503, "times": 2},
        {"method": "POST", "path": "/api/v1/jobs", "status": 429, "retry_after": 30},
        {"path": "/api/v1/jobs/*", "delay_seconds": 2},
        {"method": "GET", "path": "/api/v1/jobs/*", "drop_connection": True},
        {"method": "POST", "path": "/api/v1/jobs", "status": 503, "phase": "after"}]})
    assert [f.describe() for f in faults.http_faults] == [
        "status 503 (before)", "status 429 (before)", "delay 2s", "drop_connection",
        "status 503 (after)"]
    assert faults.http_faults[0].matches("POST", "/api/v1/jobs")
    assert not faults.http_faults[2].matches("GET", "/api/v1/jobs")


@pytest.mark.parametrize("raw, named", [
    ({"next_job": []}, "next_job: Unknown field"),
    ({"next_jobs": [{"outcome": "exploded"}]}, "next_jobs.0.outcome"),
    ({"queue": {"delay_seconds": -1}}, "queue.delay_seconds"),
    ({"queue": {"polls_before_running": 1.5}}, "queue.polls_before_running"),
    ({"failures": {"rate": 2}}, "failures.rate"),
    ({"backends": {"fake_manila": {"status": "asleep"}}}, "backends.fake_manila"),
    ({"http_faults": [{"path": "/jobs"}]}, "needs status, drop_connection or delay_seconds"),
    ({"http_faults": [{"path": "jobs", "status": 503}]}, "http_faults.0.path"),
    ({"http_faults": [{"path": "/jobs", "status": 999}]}, "http_faults.0.status"),
    ({"http_faults": [{"path": "/jobs", "status": 503, "phase": "during"}]},
     "http_faults.0.phase"),
    ({"auth": {"reject_tokens": "maybe"}}, "auth.reject_tokens"),
    ([], "A scenario is a JSON object"),
])
def test_bad_scenarios_name_the_field(raw, named):
    with pytest.raises(ScenarioError, match=named.replace(".", r"\.")):
        parse(raw)


def test_backend_patterns_exact_name_first():
    scenario = parse({"backends": {"*": {"queue_length": 9},
                                   "fake_manila": {"status": "offline"}}})
    assert scenario.backend("fake_manila").status == "offline"
    assert scenario.backend("fake_lima").queue_length == 9
    assert scenario.holds_jobs


def test_scenario_file_errors(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_file(path)
    with pytest.raises(ScenarioError, match="Cannot read"):
        load_file(tmp_path / "missing.json")


def _consume(data_dir: str, count: int, queue) -> None:
    state = ScenarioState(data_dir)
    taken = []
    for n in range(count):
        fate = state.take_fates([f"{multiprocessing.current_process().pid}-{n}"])[0]
        fault = state.take_fault("GET", "/api/v1/backends")
        taken.append((fate[1] if fate else None, fault is not None))
    queue.put(taken)


def test_processes_consume_each_scripted_item_once(tmp_path):
    """Four processes take fates and faults from one state: each scripted item is taken
    exactly once, whoever takes it (gunicorn workers share a scenario the same way)."""
    state = ScenarioState(tmp_path)
    state.replace(parse({"next_jobs": [{"outcome": "failed"}] * 10,
                         "http_faults": [{"path": "/api/v1/backends", "status": 503,
                                          "times": 7}]}))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(str(tmp_path), 5, queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in queue.get(timeout=120)]
    for proc in procs:
        proc.join(60)
    origins = sorted(origin for origin, _ in results if origin)
    assert origins == sorted(f"next_jobs[{i}]" for i in range(10))
    assert sum(faulted for _, faulted in results) == 7
    assert state.current()["next_jobs"] == [] and state.current()["http_faults"] == []


def test_failure_rate_follows_the_seed(tmp_path):
    state = ScenarioState(tmp_path)
    scenario = parse({"seed": 7, "failures": {"rate": 0.5, "reason": "flaky"}})
    state.replace(scenario)
    first = [bool(f) for f in state.take_fates([f"a{i}" for i in range(40)])]
    state.replace(scenario)
    again = [bool(f) for f in state.take_fates([f"b{i}" for i in range(40)])]
    expected = [random.Random(f"7:{n}").random() < 0.5 for n in range(40)]
    assert first == again == expected
    assert 5 < sum(first) < 35  # a rate of 0.5, not 0 or 1


def test_reset_returns_to_the_initial_scenario(tmp_path):
    state = ScenarioState(tmp_path)
    initial = parse({"next_jobs": [{"outcome": "cancelled"}]})
    state.ensure(initial)
    state.take_fates(["j1"])
    state.ensure(initial)  # a restarted worker: the consumed item stays consumed
    assert state.current()["next_jobs"] == []
    state.replace(parse({"auth": {"reject_tokens": True}}))
    state.reset()
    assert state.scenario() == initial and state.fates() == {}


def test_journal_keeps_the_last_entries_and_no_secrets(tmp_path):
    journal = Journal(tmp_path, size=10)
    for n in range(100):
        journal.record("GET", f"/api/v1/jobs/j{n}", 200, None, 0.0)
    entries = journal.entries()
    assert [e["path"] for e in entries] == [f"/api/v1/jobs/j{n}" for n in range(90, 100)]
    assert set(entries[0]) == {"time", "method", "path", "status", "fault", "duration_ms",
                               "worker"}
    assert journal.path.stat().st_size < 3 * 10 * 256 + 300
    journal.clear()
    assert journal.entries() == []


GUARD_SCRIPT = textwrap.dedent("""
    import json, os, socket, warnings
    from qrs import keyguard
    from qrs.client import INSTANCE
    from qiskit_ibm_runtime import QiskitRuntimeService

    keyguard.arm("127.0.0.1")
    os.environ.pop("IAM_URL", None)           # the dangerous configuration
    os.environ["QISKIT_FUNCTIONS_EXPERIMENTAL"] = "1"
    outcome = "no error"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            QiskitRuntimeService(channel="ibm_quantum_platform", token="a-real-ibm-key",
                                 url="https://quantum.cloud.ibm.com", instance=INSTANCE)
        except Exception as exc:
            outcome = type(exc).__name__
    try:  # code that is not the client's is not guarded
        socket.getaddrinfo("qrs-guard-test.invalid", 80)
        other = "resolved"
    except Exception as exc:
        other = type(exc).__name__
    print(json.dumps({"blocked": keyguard.blocked(), "outcome": outcome, "other": other}))
""")


def test_key_guard_stops_the_client_reaching_ibm_cloud():
    """A client configured without IAM_URL, in a process where the guard is armed, never
    reaches iam.cloud.ibm.com (blocked before the name is even resolved); other code of
    the process is left alone. A fresh process, so this test's environment stays clean."""
    done = subprocess.run([sys.executable, "-c", GUARD_SCRIPT], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["blocked"] and report["blocked"][0] == "iam.cloud.ibm.com:443", report
    assert all(not host.startswith("127.") for host in report["blocked"])
    assert report["other"] in {"gaierror", socket.gaierror.__name__}, report
