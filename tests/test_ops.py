"""Operator features: OpenAPI document and /docs, /health and /ready, Prometheus /metrics,
the dashboard (also in a real headless Chromium), structured logs and the ``qrs`` CLI.

Jobs run through a real gunicorn server with two workers, so the metrics test also
checks that counters written by different worker processes add up.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qrs import cli, joblog
from qrs.auth import hash_key, new_key
from qrs.logs import JobIdFilter, JsonFormatter
from qrs.openapi import openapi_path
from qrs.store import NewJob, Store

from . import browser
from .support.server import ROOT, ServerProcess

JOBS = 4


# ------------------------------------------------------------------ shared server
@pytest.fixture(scope="module")
def ops_server(tmp_path_factory):
    """Two gunicorn workers, noise on; ``JOBS`` Bell jobs run before the tests look."""
    server = ServerProcess(tmp_path_factory.mktemp("ops") / "data", gunicorn=True, workers=2,
                           env={"QRS_EXECUTOR_THREADS": "1"}).start(timeout=180)
    server.before = _samples(server.url)
    server.jobs = [browser.submit_bell(server.url, tags=[f"t{i}"]) for i in range(JOBS)]
    server.statuses = [browser.wait_final(server.url, job_id) for job_id in server.jobs]
    yield server
    server.stop()


def _samples(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url + "/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


LABELS = (("backend", "fake_manila"), ("program", "sampler"))


# ----------------------------------------------------------------------- OpenAPI
def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_lists_every_route_with_valid_structure(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.0")
    assert spec["info"]["title"] and spec["info"]["version"]
    paths = spec["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = openapi_path(rule.rule.removeprefix("/api/v1") or "/")
        assert path in paths, f"{rule.rule} is missing from the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = paths[path][method.lower()]
            assert operation["responses"] and operation["summary"], (method, path)
            for name in re.findall(r"{([^}]+)}", path):
                assert any(p["in"] == "path" and p["name"] == name
                           for p in operation["parameters"]), (method, path, name)
    schemas = spec["components"]["schemas"]
    for ref in set(_refs(spec)):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_openapi_comes_from_the_marshmallow_schemas(client):
    spec = client.get("/openapi.json").get_json()
    create = spec["paths"]["/jobs"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"program_id", "backend", "params"} <= set(body["required"])
    assert set(create["responses"]) >= {"200", "400", "404", "429"}
    listing = {p["name"]: p for p in spec["paths"]["/jobs"]["get"]["parameters"]}
    assert listing["limit"]["in"] == "query"
    assert listing["limit"]["schema"]["maximum"] == 1000
    assert {"backend", "pending", "tags", "created_after", "sort"} <= set(listing)
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_docs_page_lists_operations_and_schemas(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for text in ("/jobs/{job_id}/results", "/sessions", "/identity/token", "JobCreate",
                 "/openapi.json"):
        assert text in html
    assert "<script" not in html  # nothing fetched from elsewhere, nothing to run


# ----------------------------------------------------------------- health, ready
def test_health_and_ready(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    ready = client.get("/ready")
    body = ready.get_json()
    assert ready.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {"store": True, "executor": True, "runner": True}
    assert body["queue_depth"] == 0 and body["disk_free_bytes"] > 0


@pytest.fixture
def idle_app(config):
    """An app whose runner never starts (QRS_START_RUNNER=0): queued jobs stay queued."""
    from qrs import create_app

    return create_app(config.replace(start_runner=False))


def test_ready_counts_queued_jobs(idle_app):
    client = idle_app.test_client()
    store = idle_app.extensions["qrs"].store
    store.add_job(NewJob(user_id="shared", program_id="sampler", backend="fake_manila",
                         params_text="{}"))
    assert client.get("/ready").get_json()["queue_depth"] >= 1


# ---------------------------------------------------------------------- metrics
def test_metrics_count_jobs_across_gunicorn_workers(ops_server):
    assert ops_server.statuses == ["Completed"] * JOBS
    after = _samples(ops_server.url)

    def moved(name: str) -> float:
        return after.get((name, LABELS), 0) - ops_server.before.get((name, LABELS), 0)

    assert moved("qrs_jobs_submitted_total") == JOBS
    assert moved("qrs_jobs_started_total") == JOBS
    assert moved("qrs_jobs_completed_total") == JOBS
    assert moved("qrs_jobs_failed_total") == 0
    assert moved("qrs_job_duration_seconds_count") == JOBS
    assert moved("qrs_job_duration_seconds_sum") > 0
    assert after[("qrs_queue_depth", ())] == 0
    assert after[("qrs_executor_busy_threads", ())] == 0


def test_metrics_count_user_cancels(idle_app):
    client = idle_app.test_client()

    def cancelled() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        return sum(s.value for f in text_string_to_metric_families(text)
                   for s in f.samples if s.name == "qrs_jobs_cancelled_total")

    store = idle_app.extensions["qrs"].store
    job = store.add_job(NewJob(user_id="shared", program_id="sampler", backend="fake_manila",
                               params_text="{}"))
    before = cancelled()
    assert client.post(f"/jobs/{job.id}/cancel").status_code == 204
    assert cancelled() == before + 1


# --------------------------------------------------------------------- dashboard
def test_dashboard_shows_jobs_backends_and_filters(ops_server):
    html = requests.get(ops_server.url + "/ui", timeout=30).text
    for job_id in ops_server.jobs:
        assert job_id in html
    assert re.search(r"fake_manila</a></td>\s*<td class=\"num\">5</td>", html)
    assert "t0" in html and "Completed" in html
    failed = requests.get(ops_server.url + "/ui", params={"status": "Failed"}, timeout=30).text
    assert not any(job_id in failed for job_id in ops_server.jobs)
    other = requests.get(ops_server.url + "/ui", params={"backend": "fake_lima"}, timeout=30)
    assert not any(job_id in other.text for job_id in ops_server.jobs)
    bogus = requests.get(ops_server.url + "/ui", params={"status": "Bogus"}, timeout=30)
    assert bogus.status_code == 400 and "Bogus" in bogus.json()["errors"][0]["message"]
    home = requests.get(ops_server.url + "/", timeout=30, allow_redirects=False)
    assert home.status_code == 302 and home.headers["Location"].endswith("/ui")


def test_dashboard_job_page_plots_counts(ops_server):
    job_id = ops_server.jobs[0]
    html = requests.get(f"{ops_server.url}/ui/jobs/{job_id}", timeout=30).text
    assert "Job received and queued." in html
    svg = re.search(r"<svg class=\"hist\".*?</svg>", html, re.S).group(0)
    bars = re.findall(r"<title>([01]+|other[^:]*): (\d+)</title>", svg)
    counts = {label: int(n) for label, n in bars}
    assert sum(counts.values()) == 500
    # A noisy Bell pair: 00 and 11 hold most shots, so they are the two tallest bars.
    assert {bars[0][0], bars[1][0]} == {"00", "11"}
    assert counts["00"] + counts["11"] > 0.8 * 500


def test_dashboard_needs_an_admin_key_in_api_key_mode(app, client):
    store = app.extensions["qrs"].store
    user_key, admin_key = new_key(), new_key()
    store.add_api_key("alice", hash_key(user_key))
    store.add_api_key("root", hash_key(admin_key), admin=True)
    job = store.add_job(NewJob(user_id="alice", program_id="sampler", backend="fake_manila",
                               params_text="{}"))
    anonymous = client.get("/ui")
    assert anonymous.status_code == 302 and "/ui/login" in anonymous.headers["Location"]
    assert client.get(f"/ui/jobs/{job.id}").status_code == 302
    refused = client.post("/ui/login", data={"apikey": user_key})
    assert refused.status_code == 401 and b"admin" in refused.data
    assert client.get("/ui").status_code == 302
    signed_in = client.post("/ui/login", data={"apikey": admin_key, "next": "/ui"})
    assert signed_in.status_code == 302
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and admin_key not in cookie
    page = client.get("/ui")
    assert page.status_code == 200 and job.id.encode() in page.data
    assert client.post("/ui/login", data={"apikey": admin_key, "next": "//evil.example"}
                       ).headers["Location"] == "/ui"
    client.post("/ui/logout")
    assert client.get("/ui").status_code == 302


def test_dashboard_in_headless_chromium(ops_server, tmp_path):
    if browser.chromium() is None:
        pytest.skip("no chromium on this machine, and 'apt-get install -y chromium' was not "
                    "possible (not root, or no apt-get) or failed (no mirror reached)")
    dom = browser.dump_dom(f"{ops_server.url}/ui/jobs/{ops_server.jobs[0]}")
    assert ops_server.jobs[0] in dom and "<rect" in dom
    shot = browser.screenshot(ops_server.url + "/ui", tmp_path / "ui.png")
    assert browser.png_size(shot) == (1400, 1000)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


# --------------------------------------------------------------------------- logs
def test_json_logs_carry_the_job_id():
    record = None

    class Keep(logging.Handler):
        def emit(self, rec):
            nonlocal record
            record = rec

    logger = logging.getLogger("qrs.test_ops")
    handler = Keep()
    handler.addFilter(JobIdFilter())
    logger.addHandler(handler)
    try:
        with joblog.bound(joblog.JobContext("d123", sink=lambda line: None)):
            logger.warning("inside the job")
    finally:
        logger.removeHandler(handler)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["job_id"] == "d123" and entry["message"] == "inside the job"


# ---------------------------------------------------------------------------- CLI
def test_cli_jobs_keys_backends(ops_server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QRS_DATA_DIR", str(ops_server.data_dir))
    assert cli.main(["jobs", "list", "--limit", "50"]) == 0
    listing = capsys.readouterr().out
    assert all(job_id in listing for job_id in ops_server.jobs)
    assert f"({JOBS} of {JOBS})" in listing
    assert cli.main(["jobs", "show", ops_server.jobs[0]]) == 0
    shown = capsys.readouterr().out
    assert '"status": "Completed"' in shown and "Pub 1/1 done" in shown
    assert cli.main(["jobs", "cancel", ops_server.jobs[0]]) == 1  # already final
    assert cli.main(["jobs", "show", "dnosuchjob"]) == 1
    assert cli.main(["backends"]) == 0
    assert "fake_manila\t5 qubits" in capsys.readouterr().out

    monkeypatch.setenv("QRS_DATA_DIR", str(tmp_path / "cli"))
    store = Store(tmp_path / "cli")
    queued = store.add_job(NewJob(user_id="u", program_id="sampler", backend="fake_manila",
                                  params_text="{}"))
    assert cli.main(["jobs", "cancel", queued.id]) == 0
    assert store.get_job(queued.id).status.value == "Cancelled"
    assert cli.main(["keys", "create", "--user", "bob"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("qrs_") and store.find_api_key(hash_key(key))["user_id"] == "bob"
    assert cli.main(["keys", "list"]) == 0
    assert "bob\tuser\tactive" in capsys.readouterr().out
    assert cli.main(["keys", "revoke", "bob"]) == 0
    cli.main(["keys", "list"])
    assert "bob\tuser\trevoked" in capsys.readouterr().out


def test_cli_entry_point_and_bench_arguments():
    run = [sys.executable, "-m", "qrs.cli"]
    help_text = subprocess.run([*run, "--help"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout
    for command in ("serve", "keys", "jobs", "backends", "bench"):
        assert command in help_text
    refused = subprocess.run([*run, "bench", "--only", "nothing"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "unknown figure" in refused.stderr
