"""A job's way through the runners: claim, heartbeat, finish, fail, cancel, recover,
release, prune.

Each step is one short write transaction around ``transition``, so two processes never
claim the same job, a lease renewal never resurrects a finished job, and a cancelled
job's late result is discarded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

from ..batching import BatchRule
from ..states import (
    FINAL_JOB_STATES,
    PENDING_JOB_STATES,
    JobStatus,
    ReasonCode,
    SessionMode,
    SessionState,
)
from .db import marks
from .jobs import JobRecords
from .models import JOB_COLUMNS, Job
from .transition import Sql, status_in, stored_plus, transition

_QUEUED, _RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value


class JobLifecycle(JobRecords):
    """The state-changing half of ``Store``'s job methods."""

    def claim(self, worker_id: str, now: float | None = None) -> Job | None:
        """Take the next runnable job, atomically. ``None`` when nothing can run now."""
        jobs = self.claim_batch(worker_id, BatchRule(), now)
        return jobs[0] if jobs else None

    def claim_batch(
        self,
        worker_id: str,
        rule: BatchRule,
        now: float | None = None,
        among: Sequence[str] | None = None,
    ) -> list[Job]:
        """Take the next runnable job and, if ``rule`` lets it lead a batch, up to
        ``rule.max_jobs - 1`` more that the rule lets join it, in one transaction.

        Order: jobs of an active dedicated session first (so a session's next job does
        not wait behind unrelated work), then everything else by creation time. A
        dedicated session's job waits while another job of that session runs.
        ``among``: take only jobs with these ids (a test scenario holds the others back).
        """
        now = time.time() if now is None else now
        only, only_args = "", []
        if among is not None:
            only, only_args = "id IN (SELECT value FROM json_each(?)) AND ", [json.dumps(among)]
        with self.db.tx() as db:
            row = db.execute(
                "SELECT j.id, j.session_id, j.backend, j.program_id, j.width, "
                "j.max_execution_time FROM jobs j "
                "LEFT JOIN sessions s ON s.id=j.session_id "
                f"WHERE {only and 'j.' + only}j.status=? AND (j.session_id IS NULL OR "
                "s.mode=? OR NOT EXISTS "
                "(SELECT 1 FROM jobs r WHERE r.session_id=j.session_id AND r.status=?)) "
                "ORDER BY CASE WHEN s.state=? AND s.mode=? THEN 0 ELSE 1 END, "
                "j.created, j.rowid LIMIT 1",
                (
                    *only_args,
                    _QUEUED,
                    SessionMode.BATCH.value,
                    _RUNNING,
                    SessionState.ACTIVE.value,
                    SessionMode.DEDICATED.value,
                ),
            ).fetchone()
            if row is None:
                return []
            job_id, session_id, backend, program_id, width, time_limit = row
            ids = [job_id]
            if rule.admits(program_id, session_id, width):
                ids += [
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM jobs WHERE {only}status=? AND session_id IS NULL AND "
                        "program_id=? AND backend=? AND width<=? AND id!=? AND "
                        "max_execution_time IS ? ORDER BY created, rowid LIMIT ?",
                        (
                            *only_args,
                            _QUEUED,
                            rule.program,
                            backend,
                            rule.max_qubits,
                            job_id,
                            time_limit,
                            rule.max_jobs - 1,
                        ),
                    )
                ]
            line = f"Job started on worker {worker_id}" + (
                f" in a batch of {len(ids)} small jobs." if len(ids) > 1 else "."
            )
            ids = transition(
                db,
                ids,
                JobStatus.RUNNING,
                [JobStatus.QUEUED],
                line,
                now=now,
                claimed_by=worker_id,
                heartbeat=now,
                running_at=now,
                attempts=Sql("attempts+1"),
            )
            rows = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks(ids)})", ids
            ).fetchall()
        order = {i: n for n, i in enumerate(ids)}
        return sorted((Job.from_row(r) for r in rows), key=lambda job: order[job.id])

    def heartbeat(self, worker_id: str, now: float | None = None) -> int:
        """Renew the lease of every job this worker runs; returns how many."""
        with self.db.tx() as db:
            return db.execute(
                "UPDATE jobs SET heartbeat=? WHERE claimed_by=? AND status=?",
                (time.time() if now is None else now, worker_id, _RUNNING),
            ).rowcount

    def finish(
        self,
        job_id: str,
        worker_id: str,
        result_text: str,
        usage_seconds: float,
        now: float | None = None,
    ) -> bool:
        """Record success. False (and the result is dropped) if the job is no longer ours."""
        return self._end(
            job_id,
            worker_id,
            JobStatus.COMPLETED,
            None,
            None,
            result_text,
            usage_seconds,
            "Job completed.",
            now,
        )

    def fail(
        self,
        job_id: str,
        worker_id: str,
        message: str,
        reason_code: int = ReasonCode.EXECUTION_FAILED,
        usage_seconds: float = 0.0,
        status: JobStatus = JobStatus.FAILED,
        now: float | None = None,
    ) -> bool:
        """Record a failure (or a time-out cancel) with a message the client will show."""
        return self._end(
            job_id,
            worker_id,
            status,
            message,
            int(reason_code),
            message,
            usage_seconds,
            f"Job {status.value.lower()}: {message}",
            now,
        )

    def _end(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        reason: str | None,
        reason_code: int | None,
        result_text: str,
        usage_seconds: float,
        log_line: str,
        now: float | None,
    ) -> bool:
        """Move a job this worker runs to a final state, publishing its result file.

        The result is staged first and renamed into place only if the conditional UPDATE
        matched, so a job cancelled meanwhile keeps its cancellation text.
        """
        now = time.time() if now is None else now
        path = self.payloads.result_path(job_id)
        staged = self.payloads.stage(path, result_text)
        try:
            with self.db.tx() as db:
                changed = transition(
                    db,
                    job_id,
                    status,
                    [JobStatus.RUNNING],
                    log_line,
                    now=now,
                    worker=worker_id,
                    reason=reason,
                    reason_code=reason_code,
                    finished_at=now,
                    usage_seconds=usage_seconds,
                    heartbeat=None,
                    stored_bytes=stored_plus(staged.stat().st_size),
                )
                if changed:
                    os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
        if changed:
            self._forget_private_params([job_id])
        return bool(changed)

    def cancel(
        self,
        job_id: str,
        reason: str = "Cancelled by the user.",
        reason_code: int = ReasonCode.CANCELLED_BY_USER,
        now: float | None = None,
    ) -> bool:
        """Cancel a Queued or Running job. False if it is already final.

        A Running job's result is discarded when its executor returns (``finish`` then
        finds the row no longer Running).
        """
        now = time.time() if now is None else now
        with self.db.tx() as db:
            changed = transition(
                db,
                job_id,
                JobStatus.CANCELLED,
                PENDING_JOB_STATES,
                f"Job cancelled: {reason}",
                now=now,
                reason=reason,
                reason_code=int(reason_code),
                finished_at=now,
                heartbeat=None,
                stored_bytes=stored_plus(len(reason.encode())),
            )
        if changed:
            self.payloads.write_result(job_id, reason)
            self._forget_private_params([job_id])
        return bool(changed)

    def recover(
        self, lease_seconds: float, max_attempts: int, now: float | None = None
    ) -> list[tuple[str, str]]:
        """Requeue or fail Running jobs whose worker stopped renewing its lease.

        Returns ``(job_id, "requeued" | "failed")`` for each job handled. A job that has
        already been tried ``max_attempts`` times fails with a reason instead of looping.
        """
        now = time.time() if now is None else now
        handled: list[tuple[str, str]] = []
        failed: dict[str, str] = {}
        with self.db.tx() as db:
            stale = db.execute(
                "SELECT id, attempts, claimed_by FROM jobs WHERE status=? AND heartbeat<?",
                (_RUNNING, now - lease_seconds),
            ).fetchall()
            for job_id, attempts, worker in stale:
                if attempts < max_attempts:
                    transition(
                        db,
                        job_id,
                        JobStatus.QUEUED,
                        [JobStatus.RUNNING],
                        f"Worker {worker} stopped responding; job re-queued "
                        f"(attempt {attempts} of {max_attempts}).",
                        now=now,
                        claimed_by=None,
                        heartbeat=None,
                    )
                    handled.append((job_id, "requeued"))
                else:
                    reason = (
                        f"The worker running this job stopped responding {attempts} times "
                        "(crash or out-of-memory kill); the job was not retried again."
                    )
                    transition(
                        db,
                        job_id,
                        JobStatus.FAILED,
                        [JobStatus.RUNNING],
                        f"Job failed: {reason}",
                        now=now,
                        reason=reason,
                        reason_code=int(ReasonCode.WORKER_LOST),
                        finished_at=now,
                        heartbeat=None,
                        stored_bytes=stored_plus(len(reason.encode())),
                    )
                    failed[job_id] = reason
                    handled.append((job_id, "failed"))
        for job_id, reason in failed.items():
            self.payloads.write_result(job_id, reason)
        self._forget_private_params(list(failed))
        return handled

    def release(
        self,
        worker_id: str,
        now: float | None = None,
        job_ids: Sequence[str] | None = None,
        why: str = "shut down before the job finished",
    ) -> list[str]:
        """Requeue the jobs a worker still runs (all, or ``job_ids``), so they need not wait
        for the lease: a stopping worker's, or the batch-mates of a cancelled job.

        The attempt is given back: the job was interrupted, it did not crash anything.
        Its executor's late result is discarded (``finish`` finds it no longer ours).
        """
        now = time.time() if now is None else now
        with self.db.tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM jobs WHERE status=? AND claimed_by=?", (_RUNNING, worker_id)
                )
                if job_ids is None or r[0] in job_ids
            ]
            return transition(
                db,
                ids,
                JobStatus.QUEUED,
                [JobStatus.RUNNING],
                f"Worker {worker_id} {why}; job re-queued.",
                now=now,
                worker=worker_id,
                claimed_by=None,
                heartbeat=None,
                attempts=Sql("MAX(attempts-1, 0)"),
            )

    def prune(self, older_than: float) -> int:
        """Delete final jobs finished before ``older_than`` (retention); returns how many."""
        sql, values = status_in(FINAL_JOB_STATES)
        rows = self.db.read(
            f"SELECT id FROM jobs WHERE {sql} AND finished_at<?", (*values, older_than)
        )
        for row in rows:
            self.delete_job(row[0])
        return len(rows)
