"""Soak run (``make soak``): gunicorn under steady raw-HTTP load while workers are killed.

For ``--minutes``, ``--threads`` client threads (each: submit, poll until final, repeat)
send small noisy jobs of two sizes to a fresh ``qrs serve`` with ``--workers`` workers; every
``--kill-every`` seconds one worker is SIGKILLed (gunicorn replaces it; its job is
re-queued after the lease). At the end it waits for the queue to drain and checks the
store: every job final and Completed, none Running, one "Job started" line per attempt,
every result served, no "database is locked". Prints jobs/s, re-queues and lock waits.
Not collected by pytest; exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qrs.devserver import ServerProcess  # noqa: E402
from tests.support.deploy import (FINAL, StoreReader, fetch_results,  # noqa: E402
                                  gunicorn_workers, lock_waits, sampler_body, submit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--kill-every", type=float, default=30.0,
                        help="seconds between worker SIGKILLs (0: never)")
    parser.add_argument("--data-dir", default="", help="default: a fresh temp dir")
    args = parser.parse_args()

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="qrs-soak-")) / "data"
    server = ServerProcess(data_dir, gunicorn=True, workers=args.workers,
                           env={"QRS_JOB_LEASE_SECONDS": "5", "QRS_HEARTBEAT_SECONDS": "1",
                                "QRS_MAX_ATTEMPTS": "3"}).start(timeout=300)
    print(f"server {server.url}, data in {data_dir}, log {server.log_path}", flush=True)
    bodies = [sampler_body(shots=64), sampler_body(num_pubs=4, shots=2000, depth=4)]
    reader = StoreReader(data_dir)
    ids: list[str] = []
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        """One user: submit a job, poll its status until it is final, submit the next."""
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    answer = submit(session, server.url, random.choice(bodies))
                    if answer.status_code != 200:
                        errors.append(f"POST {answer.status_code}: {answer.text[:200]}")
                        continue
                    job_id = answer.json()["id"]
                    with lock:
                        ids.append(job_id)
                    while not stop.is_set():
                        status = session.get(f"{server.url}/api/v1/jobs/{job_id}",
                                             params={"exclude_params": "true"}, timeout=60)
                        if status.json()["status"] in FINAL:
                            break
                except requests.RequestException as exc:  # a killed worker's connection
                    errors.append(f"{type(exc).__name__}: {exc}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    kills = 0
    try:
        end = started + args.minutes * 60
        next_kill = started + args.kill_every if args.kill_every else float("inf")
        while time.monotonic() < end:
            time.sleep(1)
            if time.monotonic() >= next_kill:
                victims = sorted(gunicorn_workers(server.proc.pid))
                if victims:
                    os.kill(random.choice(victims), signal.SIGKILL)
                    kills += 1
                next_kill += args.kill_every
            if int(time.monotonic() - started) % 15 == 0:
                print(f"{time.monotonic() - started:6.0f} s: {len(ids)} submitted, "
                      f"{kills} workers killed", flush=True)
        stop.set()
        for thread in threads:
            thread.join(70)
        submitted_in = time.monotonic() - started
        reader.wait(lambda r: all(s in FINAL for s in r.statuses(ids).values()), 1800, 1.0)
        elapsed = time.monotonic() - started
        statuses = reader.statuses(ids)
        attempts = dict(reader.query("SELECT id, attempts FROM jobs"))
        starts = reader.started_counts()
        results = fetch_results(server.url, ids)
    finally:
        stop.set()
        server.stop()

    log = server.log_path.read_text(errors="replace")
    waits = lock_waits(log)
    problems = []
    not_completed = {i: s for i, s in statuses.items() if s != "Completed"}
    if not_completed:
        problems.append(f"{len(not_completed)} jobs not Completed: "
                        f"{list(not_completed.items())[:5]}")
    mismatched = [i for i in ids if starts.get(i, 0) != attempts.get(i)]
    if mismatched:
        problems.append(f"{len(mismatched)} jobs whose start lines differ from attempts")
    unserved = [i for i, (code, _, _) in results.items() if code != 200]
    if unserved:
        problems.append(f"{len(unserved)} results not served")
    if "database is locked" in log:
        problems.append("'database is locked' in the server log")
    reruns = sum(1 for i in ids if attempts.get(i, 1) > 1)
    print(f"{len(ids)} jobs in {elapsed:.0f} s ({len(ids) / elapsed:.1f} jobs/s; submissions "
          f"for {submitted_in:.0f} s), {args.workers} workers, {kills} SIGKILLs, {reruns} jobs "
          f"re-run after a kill, {len(errors)} client errors, SQLite write-lock waits > 100 ms: "
          f"{len(waits)}" + (f" (max {max(waits):.0f} ms)" if waits else ""))
    for line in errors[:5]:
        print("client error:", line)
    for line in problems:
        print("FAIL:", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
