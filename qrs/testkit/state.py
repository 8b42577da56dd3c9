"""The scenario's shared state: one JSON document in the data directory, under a file lock.

Every gunicorn worker and every runner thread reads and consumes the same scenario: the
third of three scripted failures fails the third job whichever worker claims it, and a
fault set for two requests faults exactly two, whichever workers answer them. So nothing
lives in process memory but a parsed copy of the scenario, keyed by the document's
``generation`` (a new random word whenever the scenario is replaced).

``<data dir>/testkit/state.json`` holds::

    initial     the scenario the server started with (reset returns to it), or null
    scenario    the scenario now in force, as set
    generation  changes whenever ``scenario`` does
    used        how many ``next_jobs`` have been consumed
    draws       how many failure-rate draws have been made (the seed's sequence position)
    fault_left  uses left of each ``http_faults`` rule
    polls       status reads per job id (only while ``queue.polls_before_running`` > 0)
    fates       job id → which rule decided it (``next_jobs[0]``, ``failures.rate``)

Each operation is one short exclusive ``flock``: test traffic, not production traffic.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .scenario import HttpFault, JobFate, Scenario, parse, to_json

FOLDER = "testkit"

_FAILED_BY_RATE = "failures.rate"

T = TypeVar("T")


def folder_for(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / FOLDER


def clear(data_dir: str | os.PathLike) -> None:
    """Forget all test state of a data directory (``qrs serve`` starts afresh)."""
    shutil.rmtree(folder_for(data_dir), ignore_errors=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes and threads alike (one descriptor per holder)."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class ScenarioState:
    """Read and consume the scenario shared by every process on one data directory."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.folder = folder_for(data_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "state.json"
        self._lock_path = self.folder / "state.lock"
        self._parsed: tuple[str, Scenario] = ("", Scenario())
        self._parse_lock = threading.Lock()

    # ---------------------------------------------------------------- plumbing
    @staticmethod
    def _fresh(initial: dict | None, scenario: dict) -> dict[str, Any]:
        return {
            "initial": initial,
            "scenario": scenario,
            "generation": secrets.token_hex(8),
            "used": 0,
            "draws": 0,
            "fault_left": [rule.get("times", 1) for rule in scenario.get("http_faults", [])],
            "polls": {},
            "fates": {},
        }

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._fresh(None, to_json(Scenario()))

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".state.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, self.path)

    @contextmanager
    def _doc(self, write: bool = True) -> Iterator[dict[str, Any]]:
        """The document under the lock; written back if ``write`` and the caller changed it."""
        with file_lock(self._lock_path):
            doc = self._read()
            before = json.dumps(doc, sort_keys=True) if write else ""
            yield doc
            if write and json.dumps(doc, sort_keys=True) != before:
                self._write(doc)

    def _scenario(self, doc: dict[str, Any]) -> Scenario:
        """The document's scenario, parsed once per generation per process."""
        with self._parse_lock:
            if self._parsed[0] != doc["generation"]:
                self._parsed = (doc["generation"], parse(doc["scenario"]))
            return self._parsed[1]

    # ------------------------------------------------------------ the scenario
    def ensure(self, initial: Scenario | None) -> None:
        """Start from ``initial`` unless the state already started from the same one (a
        restarted worker must not undo what earlier requests consumed)."""
        wanted = to_json(initial) if initial is not None else None
        with self._doc() as doc:
            if not self.path.exists() or doc["initial"] != wanted:
                doc.clear()
                doc.update(self._fresh(wanted, wanted or to_json(Scenario())))

    def scenario(self) -> Scenario:
        """The scenario in force (as set; ``current`` shows what is left of it)."""
        with self._doc(write=False) as doc:
            return self._scenario(doc)

    def replace(self, scenario: Scenario) -> None:
        """Put ``scenario`` in force; its counters start from zero."""
        with self._doc() as doc:
            doc.update(
                self._fresh(doc["initial"], to_json(scenario)),
                polls=doc["polls"],
                fates=doc["fates"],
            )

    def reset(self) -> None:
        """Back to the scenario the server started with; forget polls and fates."""
        with self._doc() as doc:
            initial = doc["initial"]
            doc.clear()
            doc.update(self._fresh(initial, initial or to_json(Scenario())))

    def current(self) -> dict[str, Any]:
        """The scenario JSON as it stands: unconsumed ``next_jobs``, faults' uses left."""
        with self._doc(write=False) as doc:
            scenario = self._scenario(doc)
            left = doc["fault_left"]
        return to_json(
            replace(
                scenario,
                next_jobs=scenario.next_jobs[doc["used"] :],
                http_faults=tuple(
                    replace(f, times=n) for f, n in zip(scenario.http_faults, left) if n > 0
                ),
            )
        )

    # ------------------------------------------------------------- consuming
    def take_fault(self, method: str, path: str) -> tuple[int, HttpFault] | None:
        """The first rule with uses left that matches the request, with one use taken."""
        with self._doc() as doc:
            scenario = self._scenario(doc)
            for index, rule in enumerate(scenario.http_faults):
                if doc["fault_left"][index] > 0 and rule.matches(method, path):
                    doc["fault_left"][index] -= 1
                    return index, rule
        return None

    def claim_with_fates(
        self, claim: Callable[[], list[T]], job_id: Callable[[T], str]
    ) -> list[tuple[T, tuple[JobFate, str] | None]]:
        """Run ``claim`` and give each claimed job its fate, under one lock.

        Claims made this way are serialised across threads and processes, so fates go to
        jobs in claim order — the store's order, oldest first — however many runners
        there are: the first scripted fate meets the first job submitted.
        """
        with self._doc() as doc:
            jobs = claim()
            return list(zip(jobs, self._fates(doc, [job_id(job) for job in jobs])))

    def take_fates(self, job_ids: list[str]) -> list[tuple[JobFate, str] | None]:
        """Each job's scripted fate and its origin, in order; ``None``: run it normally."""
        with self._doc() as doc:
            return self._fates(doc, job_ids)

    def _fates(self, doc: dict[str, Any], job_ids: list[str]) -> list[tuple[JobFate, str] | None]:
        """``next_jobs`` go first, in order; then each job draws against ``failures.rate``
        from a sequence fixed by ``seed`` (draw n uses its own generator seeded
        ``"<seed>:<n>"``, so every process continues the same sequence)."""
        fates: list[tuple[JobFate, str] | None] = []
        scenario = self._scenario(doc)
        for job_id in job_ids:
            fate: tuple[JobFate, str] | None = None
            if doc["used"] < len(scenario.next_jobs):
                fate = (scenario.next_jobs[doc["used"]], f"next_jobs[{doc['used']}]")
                doc["used"] += 1
            elif scenario.failures.rate > 0:
                rng = (
                    random.Random(f"{scenario.seed}:{doc['draws']}")
                    if scenario.seed is not None
                    else random.SystemRandom()
                )
                doc["draws"] += 1
                if rng.random() < scenario.failures.rate:
                    failures = scenario.failures
                    fate = (
                        JobFate("failed", failures.reason, failures.reason_code),
                        _FAILED_BY_RATE,
                    )
            if fate is not None and fate[0].outcome == "completed":
                fate = None
            if fate is not None:
                doc["fates"][job_id] = fate[1]
            fates.append(fate)
        return fates

    def count_poll(self, job_id: str) -> int:
        """Count one status read of ``job_id``; returns its reads so far."""
        with self._doc() as doc:
            doc["polls"][job_id] = doc["polls"].get(job_id, 0) + 1
            return doc["polls"][job_id]

    def polls(self) -> dict[str, int]:
        with self._doc(write=False) as doc:
            return dict(doc["polls"])

    def fates(self) -> dict[str, str]:
        with self._doc(write=False) as doc:
            return dict(doc["fates"])
