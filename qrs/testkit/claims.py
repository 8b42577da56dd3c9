"""The runner's claim under a scenario: held jobs wait, scripted jobs end as scripted.

This is the one place job-level scenarios touch job execution. The runner calls its
``claim`` with ``Store.claim_batch``'s arguments; with a scenario loaded that is
``ScriptedClaim``, which

1. leaves ``Queued`` the jobs the scenario holds back (a backend ``offline``, younger than
   ``queue.delay_seconds``, fewer status reads than ``queue.polls_before_running`` + 1),
   by claiming only among the others;
2. gives each claimed job its fate (``next_jobs`` in claim order, then ``failures.rate``)
   and records the scripted ones as ``Failed`` or ``Cancelled`` with the scenario's reason
   and code, exactly as a real failure is recorded (``Store.fail``);
3. returns the rest, which the runner executes as usual.
"""

from __future__ import annotations

import time
from functools import partial

from ..batching import BatchRule
from ..states import JobStatus, ReasonCode
from ..store import Job, JobQuery, Store
from .scenario import JobFate, Scenario
from .state import ScenarioState

#: At most this many queued jobs are looked at per claim while a scenario holds some back.
HOLD_SCAN_LIMIT = 10_000

_DEFAULT_REASONS = {
    "failed": "Job failed (QRS test scenario).",
    "cancelled": "Job cancelled (QRS test scenario).",
}


class ScriptedClaim:
    """``Store.claim_batch`` as a scenario bends it (see the module docstring)."""

    def __init__(self, store: Store, state: ScenarioState) -> None:
        self.store = store
        self.state = state

    def __call__(self, worker_id: str, rule: BatchRule) -> list[Job]:
        while True:
            scenario = self.state.scenario()
            among = self._claimable(scenario) if scenario.holds_jobs else None
            if among is not None and not among:
                return []
            claimed = self.state.claim_with_fates(
                partial(self.store.claim_batch, worker_id, rule, among=among), lambda job: job.id
            )
            if not claimed:
                return []
            runnable = [job for job, fate in claimed if fate is None]
            for job, fate in claimed:
                if fate is not None:
                    self._record(job, worker_id, *fate)
            if runnable:
                return runnable
            # every claimed job was scripted: look again rather than idle a poll interval

    def _claimable(self, scenario: Scenario) -> list[str]:
        """Ids of the queued jobs the scenario lets run now."""
        queued, _ = self.store.list_jobs(
            JobQuery(
                user_id=None,
                status=JobStatus.QUEUED.value,
                limit=HOLD_SCAN_LIMIT,
                descending=False,
            )
        )
        now = time.time()
        wanted_polls = scenario.queue.polls_before_running
        polls = self.state.polls() if wanted_polls else {}
        return [
            job.id
            for job in queued
            if not scenario.offline(job.backend)
            and now - job.created >= scenario.queue.delay_seconds
            and (not wanted_polls or polls.get(job.id, 0) > wanted_polls)
        ]

    def _record(self, job: Job, worker_id: str, fate: JobFate, origin: str) -> None:
        status = JobStatus.CANCELLED if fate.outcome == "cancelled" else JobStatus.FAILED
        reason = fate.reason or _DEFAULT_REASONS[fate.outcome]
        default_code = (
            ReasonCode.CANCELLED_BY_USER
            if status is JobStatus.CANCELLED
            else ReasonCode.EXECUTION_FAILED
        )
        code = fate.reason_code if fate.reason_code is not None else int(default_code)
        self.store.log(
            job.id, f"QRS test scenario ({origin}): {fate.outcome} with reason code {code}."
        )
        self.store.fail(job.id, worker_id, reason, code, status=status)
