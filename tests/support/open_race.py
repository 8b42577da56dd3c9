"""Many processes open one fresh data directory at the same moment, round after round.

Run in its own interpreter (``python -m tests.support.open_race ROOT ROUNDS PROCESSES``;
it forks, so it must not have imported qiskit): prints one JSON line, the failures seen
(``[round, "error"]``). QRS 0.1.0 lost about 4 rounds in 100 of 16 processes to
"database is locked" on ``PRAGMA journal_mode=WAL`` (issue 13's failed boots).
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time


def _open(path: str, start, out) -> None:
    from qrs.store import Store

    start.wait()
    try:
        Store(path).queue_depth()
        out.put(None)
    except Exception as exc:  # what a booting worker would die of
        out.put(f"{type(exc).__name__}: {exc}")


def main(root: str, rounds: int, processes: int) -> list[tuple[int, str]]:
    context = multiprocessing.get_context("fork")
    failures = []
    for number in range(rounds):
        start, out = context.Event(), context.Queue()
        procs = [context.Process(target=_open, args=(f"{root}/r{number}/data", start, out))
                 for _ in range(processes)]
        for proc in procs:
            proc.start()
        time.sleep(0.05)  # all started and waiting: the event releases them one by one
        start.set()
        failures += [(number, error) for error in (out.get(timeout=120) for _ in procs)
                     if error]
        for proc in procs:
            proc.join(30)
    return failures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
