"""Jobs as records: create, read, list, tag, log, delete (state changes are lifecycle.py's)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..states import FINAL_JOB_STATES, PENDING_JOB_STATES, JobStatus
from .db import Database, marks
from .models import JOB_COLUMNS, Job, JobQuery, NewJob, new_id
from .payloads import Payloads
from .transition import status_in


class JobRecords:
    """The job-record half of ``Store`` (a mixin: ``Store`` supplies ``db`` and ``payloads``)."""

    db: Database
    payloads: Payloads
    data_dir: Path
    _disk_usage: tuple[float, int]

    def add_job(self, new: NewJob, now: float | None = None) -> Job:
        """Store params, then the row, in that order: a job row never lacks its params.

        With an idempotency key, a second identical submission returns the first job.
        ``created`` is kept to the microsecond the API shows, so a ``created_after`` filter
        given a job's own creation time includes that job.
        """
        now = round(time.time() if now is None else now, 6)
        if new.idempotency_key:
            existing = self.db.read(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE user_id=? AND idempotency_key=?",
                (new.user_id, new.idempotency_key),
            )
            if existing:
                return Job.from_row(existing[0])
        job_id = new_id()
        self.payloads.write_params(job_id, new.params_text)
        try:
            with self.db.tx() as db:
                db.execute(
                    "INSERT INTO jobs (id, user_id, program_id, backend, session_id, status, "
                    "created, tags, log_level, private, max_execution_time, num_pubs, "
                    "num_circuits, width, dry_run, idempotency_key, stored_bytes) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        job_id,
                        new.user_id,
                        new.program_id,
                        new.backend,
                        new.session_id,
                        JobStatus.QUEUED.value,
                        now,
                        json.dumps(new.tags),
                        new.log_level,
                        int(new.private),
                        new.max_execution_time,
                        new.num_pubs,
                        new.num_circuits,
                        new.width,
                        int(new.dry_run),
                        new.idempotency_key,
                        len(new.params_text.encode()),
                    ),
                )
                db.execute(
                    "INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                    (job_id, now, "Job received and queued."),
                )
        except sqlite3.IntegrityError:
            self.payloads.delete(job_id)
            return self.add_job(new, now)  # lost an idempotency race: return the winner
        except BaseException:
            self.payloads.delete(job_id)
            raise
        job = self.get_job(job_id)
        assert job is not None  # just written; a delete cannot know its id yet
        return job

    def insert_finished_jobs(self, jobs: Iterable[Job]) -> int:
        """Insert rows of jobs that already finished, without payloads, in one transaction.

        For bulk imports and benchmarks (a listing over 100,000 stored jobs); a job
        served from here has no params file. Returns how many were inserted.
        """
        rows = [
            (
                j.id,
                j.user_id,
                j.program_id,
                j.backend,
                j.session_id,
                j.status.value,
                j.reason,
                j.reason_code,
                j.created,
                j.running_at,
                j.finished_at,
                json.dumps(j.tags),
                j.num_pubs,
                j.num_circuits,
                j.attempts,
                j.usage_seconds,
            )
            for j in jobs
            if j.status in FINAL_JOB_STATES
        ]
        with self.db.tx() as db:
            db.executemany(
                "INSERT INTO jobs (id, user_id, program_id, backend, session_id, status, reason, "
                "reason_code, created, running_at, finished_at, tags, num_pubs, num_circuits, "
                "attempts, usage_seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def get_job(self, job_id: str) -> Job | None:
        """One indexed primary-key read; params and results are never touched."""
        rows = self.db.read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def job_params(self, job_id: str) -> str:
        """The params text exactly as the client sent it."""
        return self.payloads.read_params(job_id)

    def job_result(self, job_id: str) -> str | None:
        """The stored result text (or failure message); ``None`` if none was written."""
        return self.payloads.read_result(job_id)

    # ``options.environment.private``: the params are deleted once the job is final, and
    # a completed job's result is served once, then deleted (as IBM documents it).
    def _forget_private_params(self, job_ids: Sequence[str]) -> None:
        """Delete the params of the private jobs among these (just-finished) jobs."""
        if not job_ids:
            return
        rows = self.db.read(
            f"SELECT id FROM jobs WHERE private=1 AND id IN ({marks(job_ids)})", list(job_ids)
        )
        for row in rows:
            path = self.payloads.params_path(row[0])
            size = path.stat().st_size if path.exists() else 0
            path.unlink(missing_ok=True)
            with self.db.tx() as db:  # no longer stored: no longer counted (quotas)
                db.execute(
                    "UPDATE jobs SET stored_bytes=MAX(stored_bytes-?, 0) WHERE id=?",
                    (size, row[0]),
                )

    def user_usage(self, user_id: str) -> tuple[int, int]:
        """(finished jobs kept, bytes of params and results stored) of one user, for the
        quotas; one read of the ``jobs_user_status_bytes`` index."""
        final_sql, final = status_in(FINAL_JOB_STATES)
        row = self.db.read(
            f"SELECT COALESCE(SUM({final_sql}),0), COALESCE(SUM(stored_bytes),0) "
            "FROM jobs WHERE user_id=?",
            (*final, user_id),
        )[0]
        return int(row[0]), int(row[1])

    def take_result(self, job_id: str) -> str | None:
        """A private job's result, deleted as it is read; ``None`` once it has been taken."""
        return self.payloads.take_result(job_id)

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """A page of jobs and the total matching count (the client's paging loop needs it)."""
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if query.user_id is not None:
            where.append("user_id=?")
            args.append(query.user_id)
        for column, value in (
            ("backend", query.backend),
            ("program_id", query.program_id),
            ("session_id", query.session_id),
            ("status", query.status),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if query.pending is not None:
            sql, values = status_in(PENDING_JOB_STATES if query.pending else FINAL_JOB_STATES)
            where.append(sql)
            args.extend(values)
        if query.created_after is not None:
            where.append("created>=?")
            args.append(query.created_after)
        if query.created_before is not None:
            where.append("created<=?")
            args.append(query.created_before)
        for tag in query.tags:
            where.append("EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE value=?)")
            args.append(tag)
        clause = " AND ".join(where)
        shown = clause if query.include_mocks else clause + " AND dry_run=0"
        order = "DESC" if query.descending else "ASC"
        rows = self.db.read(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {shown} ORDER BY created {order}, id {order} "
            "LIMIT ? OFFSET ?",
            (*args, query.limit, query.offset),
        )
        count = self.db.scalar(f"SELECT COUNT(*) FROM jobs WHERE {clause}", args)
        if not query.include_mocks:  # all minus the few dry runs: both counts stay on indexes
            count -= self.db.scalar(
                f"SELECT COUNT(*) FROM jobs WHERE {clause} AND dry_run=1", args
            )
        return [Job.from_row(r) for r in rows], count

    def queue_depth(self, user_id: str | None = None) -> int:
        """Number of Queued jobs, for one user or for everyone."""
        if user_id is None:
            return self.db.scalar(
                "SELECT COUNT(*) FROM jobs WHERE status=?", (JobStatus.QUEUED.value,)
            )
        return self.db.scalar(
            "SELECT COUNT(*) FROM jobs WHERE status=? AND user_id=?",
            (JobStatus.QUEUED.value, user_id),
        )

    def backend_queue_lengths(self) -> dict[str, int]:
        """Pending jobs per backend, for backend status answers."""
        sql, values = status_in(PENDING_JOB_STATES)
        rows = self.db.read(
            f"SELECT backend, COUNT(*) FROM jobs WHERE {sql} GROUP BY backend", values
        )
        return {r[0]: r[1] for r in rows}

    def usage_seconds(self, user_id: str | None) -> float:
        """Total execution seconds of finished jobs (for ``/instances/usage``)."""
        if user_id is None:
            return self.db.scalar("SELECT COALESCE(SUM(usage_seconds),0) FROM jobs")
        return self.db.scalar(
            "SELECT COALESCE(SUM(usage_seconds),0) FROM jobs WHERE user_id=?", (user_id,)
        )

    def set_tags(self, job_id: str, tags: list[str]) -> None:
        """Replace a job's tags (``PUT /jobs/<id>/tags``)."""
        with self.db.tx() as db:
            db.execute("UPDATE jobs SET tags=? WHERE id=?", (json.dumps(tags), job_id))

    def delete_job(self, job_id: str) -> bool:
        """Remove the row, its logs and both payload files. False if it did not exist."""
        with self.db.tx() as db:
            gone = db.execute("DELETE FROM jobs WHERE id=?", (job_id,)).rowcount
            db.execute("DELETE FROM job_logs WHERE job_id=?", (job_id,))
        self.payloads.delete(job_id)
        return bool(gone)

    def log(self, job_ids: str | Sequence[str], message: str, now: float | None = None) -> None:
        """Append one line to the log of a job (or of each job of a batch)."""
        now = time.time() if now is None else now
        ids = [job_ids] if isinstance(job_ids, str) else job_ids
        with self.db.tx() as db:
            db.executemany(
                "INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                [(i, now, message) for i in ids],
            )

    def job_logs(self, job_id: str) -> list[tuple[float, str]]:
        """``(timestamp, line)`` of a job's log, oldest first."""
        return [
            (r[0], r[1])
            for r in self.db.read(
                "SELECT ts, message FROM job_logs WHERE job_id=? ORDER BY ts, rowid", (job_id,)
            )
        ]

    def disk_usage_bytes(self, max_age_seconds: float = 60.0) -> int:
        """Bytes used by the database and payload files, recomputed at most once a minute.

        Walking a data directory of many thousand result files takes a while, and
        ``/health`` is polled often; a figure a minute old is good enough for it.
        """
        computed_at, total = self._disk_usage
        if time.monotonic() - computed_at < max_age_seconds:
            return total
        total = 0
        for root, _dirs, files in os.walk(self.data_dir):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:  # deleted meanwhile (prune, a temp file renamed)
                    pass
        self._disk_usage = (time.monotonic(), total)
        return total
