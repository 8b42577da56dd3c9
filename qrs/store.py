"""The job and session store: SQLite rows plus payload files in the data directory.

This is the only state shared between gunicorn workers and runner threads, and the only
module that changes a job's or session's state. Every state change is one short write
transaction (``BEGIN IMMEDIATE``) with a conditional ``UPDATE``, so two processes never
claim the same job and a cancelled job's late result is discarded.

Layout of the data directory::

    qrs.sqlite3            rows (WAL mode)
    params/<job id>.json   the job's ``params`` exactly as the client sent them (a private
                           job's are deleted once it is final)
    results/<job id>.json  the result text the client decodes (or the failure message); a
                           private job's is deleted when it is first read
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .batching import BatchRule
from .states import FINAL_JOB_STATES, JobStatus, ReasonCode, SessionMode, SessionState

log = logging.getLogger(__name__)

#: A write lock waited for longer than this is logged ("sqlite write lock waited ...").
LOCK_WAIT_LOG_SECONDS = 0.1

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    program_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    reason_code INTEGER,
    created REAL NOT NULL,
    running_at REAL,
    finished_at REAL,
    tags TEXT NOT NULL DEFAULT '[]',
    log_level TEXT,
    private INTEGER NOT NULL DEFAULT 0,
    max_execution_time INTEGER,
    num_pubs INTEGER NOT NULL DEFAULT 0,
    num_circuits INTEGER NOT NULL DEFAULT 0,
    width INTEGER NOT NULL DEFAULT 0,
    dry_run INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    heartbeat REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    usage_seconds REAL NOT NULL DEFAULT 0,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS jobs_user_created ON jobs (user_id, created);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
-- GET /jobs hides dry-run jobs by default and counts them apart: these small partial
-- indexes keep that as cheap as an unfiltered listing.
CREATE INDEX IF NOT EXISTS jobs_dry_runs ON jobs (dry_run, created) WHERE dry_run=1;
CREATE INDEX IF NOT EXISTS jobs_user_dry_runs ON jobs (user_id, created) WHERE dry_run=1;
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_session ON jobs (session_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL,
    ts REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs (job_id, ts);

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    backend TEXT,
    state TEXT NOT NULL,
    accepting_jobs INTEGER NOT NULL DEFAULT 1,
    max_ttl INTEGER NOT NULL,
    interactive_ttl INTEGER NOT NULL,
    created REAL NOT NULL,
    activated_at REAL,
    closed_at REAL,
    last_job_started REAL,
    last_job_completed REAL,
    close_reason TEXT
);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state);

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    revoked_at REAL
);
"""

#: Columns of a job row that lists and status polls read (never params or results).
JOB_COLUMNS = (
    "id, user_id, program_id, backend, session_id, status, reason, reason_code, created, "
    "running_at, finished_at, tags, log_level, private, max_execution_time, num_pubs, "
    "num_circuits, claimed_by, heartbeat, attempts, usage_seconds"
)


def new_id() -> str:
    """A 20-character lowercase id, like IBM's job ids (95 random bits)."""
    return "d" + base64.b32encode(secrets.token_bytes(12)).decode().lower()[:19]


@dataclass
class Job:
    """One job row (without its params or result payload)."""

    id: str
    user_id: str
    program_id: str
    backend: str
    session_id: str | None
    status: JobStatus
    reason: str | None
    reason_code: int | None
    created: float
    running_at: float | None
    finished_at: float | None
    tags: list[str]
    log_level: str | None
    private: bool
    max_execution_time: int | None
    num_pubs: int
    num_circuits: int
    claimed_by: str | None
    heartbeat: float | None
    attempts: int
    usage_seconds: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        values = dict(row)
        values["status"] = JobStatus(values["status"])
        values["tags"] = json.loads(values["tags"])
        values["private"] = bool(values["private"])
        return cls(**values)


@dataclass
class Session:
    """One session (or batch) row."""

    id: str
    user_id: str
    mode: SessionMode
    backend: str | None
    state: SessionState
    accepting_jobs: bool
    max_ttl: int
    interactive_ttl: int
    created: float
    activated_at: float | None
    closed_at: float | None
    last_job_started: float | None
    last_job_completed: float | None
    close_reason: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Session":
        values = dict(row)
        values["mode"] = SessionMode(values["mode"])
        values["state"] = SessionState(values["state"])
        values["accepting_jobs"] = bool(values["accepting_jobs"])
        return cls(**values)


@dataclass
class NewJob:
    """What the API hands the store to create a job."""

    user_id: str
    program_id: str
    backend: str
    params_text: str
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    log_level: str | None = None
    private: bool = False
    max_execution_time: int | None = None
    num_pubs: int = 0
    num_circuits: int = 0
    width: int = 0
    dry_run: bool = False
    idempotency_key: str | None = None


@dataclass
class JobQuery:
    """Filters and paging of ``GET /jobs``."""

    user_id: str | None
    limit: int = 10
    offset: int = 0
    backend: str | None = None
    pending: bool | None = None
    program_id: str | None = None
    tags: Sequence[str] = ()
    session_id: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    descending: bool = True
    status: str | None = None
    include_mocks: bool = True  # False: leave out dry runs (jobs on mock backends)


class Store:
    """SQLite rows + payload files. Thread-safe: one connection per thread."""

    def __init__(self, data_dir: str | os.PathLike, busy_timeout_ms: int = 30_000) -> None:
        self.data_dir = Path(data_dir)
        self.params_dir = self.data_dir / "params"
        self.results_dir = self.data_dir / "results"
        for folder in (self.data_dir, self.params_dir, self.results_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "qrs.sqlite3"
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._disk_usage: tuple[float, int] = (float("-inf"), 0)  # (computed at, bytes)
        self._connect().executescript(SCHEMA)  # idempotent DDL; executescript commits itself

    # ----------------------------------------------------------------- plumbing
    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000,
                                 isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken eagerly so writers queue instead of deadlocking."""
        db = self._connect()
        asked = time.monotonic()
        db.execute("BEGIN IMMEDIATE")
        waited = time.monotonic() - asked
        if waited > LOCK_WAIT_LOG_SECONDS:  # busy_timeout absorbed it; operators see how long
            log.info("sqlite write lock waited %.0f ms", waited * 1000)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._connect().execute(sql, args).fetchall()

    def ping(self) -> bool:
        """True when the database answers a query (readiness probe)."""
        return self._read("SELECT 1")[0][0] == 1

    @staticmethod
    def _stage_file(path: Path, text: str) -> Path:
        """Write ``text`` to a synced temp file beside ``path``; the caller renames it."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def _write_file(self, path: Path, text: str) -> None:
        """Write atomically: temp file, fsync, rename. A reader never sees half a file."""
        os.replace(self._stage_file(path, text), path)

    def _params_path(self, job_id: str) -> Path:
        return self.params_dir / f"{job_id}.json"

    def _result_path(self, job_id: str) -> Path:
        return self.results_dir / f"{job_id}.json"

    # ---------------------------------------------------------------------- jobs
    def add_job(self, new: NewJob, now: float | None = None) -> Job:
        """Store params, then the row, in that order: a job row never lacks its params.

        With an idempotency key, a second identical submission returns the first job.
        ``created`` is kept to the microsecond the API shows, so a ``created_after`` filter
        given a job's own creation time includes that job.
        """
        now = round(time.time() if now is None else now, 6)
        if new.idempotency_key:
            existing = self._read(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE user_id=? AND idempotency_key=?",
                (new.user_id, new.idempotency_key))
            if existing:
                return Job.from_row(existing[0])
        job_id = new_id()
        self._write_file(self._params_path(job_id), new.params_text)
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO jobs (id, user_id, program_id, backend, session_id, status, "
                    "created, tags, log_level, private, max_execution_time, num_pubs, num_circuits, "
                    "width, dry_run, idempotency_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job_id, new.user_id, new.program_id, new.backend, new.session_id,
                     JobStatus.QUEUED.value, now, json.dumps(new.tags), new.log_level,
                     int(new.private), new.max_execution_time, new.num_pubs,
                     new.num_circuits, new.width, int(new.dry_run),
                     new.idempotency_key))
                db.execute("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           (job_id, now, "Job received and queued."))
        except sqlite3.IntegrityError:
            self._params_path(job_id).unlink(missing_ok=True)
            return self.add_job(new, now)  # lost an idempotency race: return the winner
        except BaseException:
            self._params_path(job_id).unlink(missing_ok=True)
            raise
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> Job | None:
        """One indexed primary-key read; params and results are never touched."""
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def job_params(self, job_id: str) -> str:
        """The params text exactly as the client sent it."""
        return self._params_path(job_id).read_text(encoding="utf-8")

    def job_result(self, job_id: str) -> str | None:
        """The stored result text (or failure message); ``None`` if none was written."""
        try:
            return self._result_path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    # ---------------------------------------------------------- private jobs
    # ``options.environment.private``: the params are deleted once the job is final, and
    # a completed job's result is served once, then deleted (as IBM documents it).
    def _forget_private_params(self, job_ids: Sequence[str]) -> None:
        """Delete the params of the private jobs among these (just-finished) jobs."""
        if not job_ids:
            return
        rows = self._read(f"SELECT id FROM jobs WHERE private=1 AND id IN "
                          f"({','.join('?' * len(job_ids))})", list(job_ids))
        for row in rows:
            self._params_path(row[0]).unlink(missing_ok=True)

    def take_result(self, job_id: str) -> str | None:
        """Read a result and delete it, atomically: of two readers, one gets it.

        ``None`` once it has been taken.
        """
        path = self._result_path(job_id)
        taken = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.taken")
        try:
            os.rename(path, taken)
        except FileNotFoundError:
            return None
        try:
            return taken.read_text(encoding="utf-8")
        finally:
            taken.unlink(missing_ok=True)

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """A page of jobs and the total matching count (the client's paging loop needs it)."""
        where, args = ["1=1"], []
        if query.user_id is not None:
            where.append("user_id=?")
            args.append(query.user_id)
        for column, value in (("backend", query.backend), ("program_id", query.program_id),
                              ("session_id", query.session_id)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if query.status is not None:
            where.append("status=?")
            args.append(query.status)
        if query.pending is not None:
            where.append("status IN ('Queued','Running')" if query.pending
                         else "status IN ('Completed','Failed','Cancelled')")
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
        rows = self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {shown} ORDER BY created {order}, id {order} "
            "LIMIT ? OFFSET ?", (*args, query.limit, query.offset))
        count = self._read(f"SELECT COUNT(*) FROM jobs WHERE {clause}", args)[0][0]
        if not query.include_mocks:  # all minus the few dry runs: both counts stay on indexes
            count -= self._read(f"SELECT COUNT(*) FROM jobs WHERE {clause} AND dry_run=1",
                                args)[0][0]
        return [Job.from_row(r) for r in rows], count

    def queue_depth(self, user_id: str | None = None) -> int:
        """Number of Queued jobs, for one user or for everyone."""
        if user_id is None:
            return self._read("SELECT COUNT(*) FROM jobs WHERE status='Queued'")[0][0]
        return self._read("SELECT COUNT(*) FROM jobs WHERE status='Queued' AND user_id=?",
                          (user_id,))[0][0]

    def backend_queue_lengths(self) -> dict[str, int]:
        """Pending jobs per backend, for backend status answers."""
        rows = self._read("SELECT backend, COUNT(*) FROM jobs WHERE status IN "
                          "('Queued','Running') GROUP BY backend")
        return {r[0]: r[1] for r in rows}

    def usage_seconds(self, user_id: str | None) -> float:
        """Total execution seconds of finished jobs (for ``/instances/usage``)."""
        if user_id is None:
            return self._read("SELECT COALESCE(SUM(usage_seconds),0) FROM jobs")[0][0]
        return self._read("SELECT COALESCE(SUM(usage_seconds),0) FROM jobs WHERE user_id=?",
                          (user_id,))[0][0]

    def set_tags(self, job_id: str, tags: list[str]) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET tags=? WHERE id=?", (json.dumps(tags), job_id))

    def delete_job(self, job_id: str) -> bool:
        """Remove the row, its logs and both payload files. False if it did not exist."""
        with self._tx() as db:
            gone = db.execute("DELETE FROM jobs WHERE id=?", (job_id,)).rowcount
            db.execute("DELETE FROM job_logs WHERE job_id=?", (job_id,))
        self._params_path(job_id).unlink(missing_ok=True)
        self._result_path(job_id).unlink(missing_ok=True)
        return bool(gone)

    def log(self, job_ids: str | Sequence[str], message: str, now: float | None = None) -> None:
        """Append one line to the log of a job (or of each job of a batch)."""
        now = time.time() if now is None else now
        ids = [job_ids] if isinstance(job_ids, str) else job_ids
        with self._tx() as db:
            db.executemany("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           [(i, now, message) for i in ids])

    def job_logs(self, job_id: str) -> list[tuple[float, str]]:
        return [(r[0], r[1]) for r in self._read(
            "SELECT ts, message FROM job_logs WHERE job_id=? ORDER BY ts, rowid", (job_id,))]

    # ------------------------------------------------------------------ running
    def claim(self, worker_id: str, now: float | None = None) -> Job | None:
        """Take the next runnable job, atomically. ``None`` when nothing can run now."""
        jobs = self.claim_batch(worker_id, BatchRule(), now)
        return jobs[0] if jobs else None

    def claim_batch(self, worker_id: str, rule: BatchRule,
                    now: float | None = None) -> list[Job]:
        """Take the next runnable job and, if ``rule`` lets it lead a batch, up to
        ``rule.max_jobs - 1`` more that the rule lets join it, in one transaction.

        Order: jobs of an active dedicated session first (so a session's next job does
        not wait behind unrelated work), then everything else by creation time. A
        dedicated session's job waits while another job of that session runs.
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT j.id, j.session_id, j.backend, j.program_id, j.width, "
                "j.max_execution_time FROM jobs j "
                "LEFT JOIN sessions s ON s.id=j.session_id "
                "WHERE j.status='Queued' AND (j.session_id IS NULL OR s.mode='batch' OR NOT EXISTS "
                "(SELECT 1 FROM jobs r WHERE r.session_id=j.session_id AND r.status='Running')) "
                "ORDER BY CASE WHEN s.state='active' AND s.mode='dedicated' THEN 0 ELSE 1 END, "
                "j.created, j.rowid LIMIT 1").fetchone()
            if row is None:
                return []
            job_id, session_id, backend, program_id, width, time_limit = row
            ids = [job_id]
            if rule.admits(program_id, session_id, width):
                ids += [r[0] for r in db.execute(
                    "SELECT id FROM jobs WHERE status='Queued' AND session_id IS NULL AND "
                    "program_id=? AND backend=? AND width<=? AND id!=? AND "
                    "max_execution_time IS ? ORDER BY created, rowid LIMIT ?",
                    (rule.program, backend, rule.max_qubits, job_id, time_limit,
                     rule.max_jobs - 1))]
            db.executemany(
                "UPDATE jobs SET status='Running', claimed_by=?, heartbeat=?, running_at=?, "
                "attempts=attempts+1 WHERE id=? AND status='Queued'",
                [(worker_id, now, now, i) for i in ids])
            line = f"Job started on worker {worker_id}" + (
                f" in a batch of {len(ids)} small jobs." if len(ids) > 1 else ".")
            db.executemany("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           [(i, now, line) for i in ids])
            if session_id:
                db.execute(
                    "UPDATE sessions SET state='active', activated_at=COALESCE(activated_at, ?), "
                    "last_job_started=? WHERE id=? AND state!='closed'", (now, now, session_id))
            rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN "
                              f"({','.join('?' * len(ids))})", ids).fetchall()
        order = {i: n for n, i in enumerate(ids)}
        return sorted((Job.from_row(r) for r in rows), key=lambda job: order[job.id])

    def heartbeat(self, worker_id: str, now: float | None = None) -> int:
        """Renew the lease of every job this worker runs; returns how many."""
        with self._tx() as db:
            return db.execute("UPDATE jobs SET heartbeat=? WHERE claimed_by=? AND status='Running'",
                              (time.time() if now is None else now, worker_id)).rowcount

    def finish(self, job_id: str, worker_id: str, result_text: str,
               usage_seconds: float, now: float | None = None) -> bool:
        """Record success. False (and the result is dropped) if the job is no longer ours."""
        return self._end(job_id, worker_id, JobStatus.COMPLETED, None, None, result_text,
                         usage_seconds, "Job completed.", now)

    def fail(self, job_id: str, worker_id: str, message: str,
             reason_code: int = ReasonCode.EXECUTION_FAILED, usage_seconds: float = 0.0,
             status: JobStatus = JobStatus.FAILED, now: float | None = None) -> bool:
        """Record a failure (or a time-out cancel) with a message the client will show."""
        return self._end(job_id, worker_id, status, message, int(reason_code), message,
                         usage_seconds, f"Job {status.value.lower()}: {message}", now)

    def _end(self, job_id: str, worker_id: str, status: JobStatus, reason: str | None,
             reason_code: int | None, result_text: str, usage_seconds: float, log_line: str,
             now: float | None) -> bool:
        """Move a job this worker runs to a final state, publishing its result file.

        The result is staged first and renamed into place only if the conditional UPDATE
        matched, so a job cancelled meanwhile keeps its cancellation text.
        """
        now = time.time() if now is None else now
        path = self._result_path(job_id)
        staged = self._stage_file(path, result_text)
        try:
            with self._tx() as db:
                changed = db.execute(
                    "UPDATE jobs SET status=?, reason=?, reason_code=?, finished_at=?, "
                    "usage_seconds=?, heartbeat=NULL WHERE id=? AND status='Running' "
                    "AND claimed_by=?",
                    (status.value, reason, reason_code, now, usage_seconds, job_id, worker_id)
                ).rowcount
                if changed:
                    os.replace(staged, path)
                    db.execute("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                               (job_id, now, log_line))
                    self._after_job_end(db, job_id, now)
        finally:
            staged.unlink(missing_ok=True)
        if changed:
            self._forget_private_params([job_id])
        return bool(changed)

    def cancel(self, job_id: str, reason: str = "Cancelled by the user.",
               reason_code: int = ReasonCode.CANCELLED_BY_USER, now: float | None = None) -> bool:
        """Cancel a Queued or Running job. False if it is already final.

        A Running job's result is discarded when its executor returns (``finish`` then
        finds the row no longer Running).
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            changed = db.execute(
                "UPDATE jobs SET status='Cancelled', reason=?, reason_code=?, finished_at=?, "
                "heartbeat=NULL WHERE id=? AND status IN ('Queued','Running')",
                (reason, int(reason_code), now, job_id)).rowcount
            if changed:
                db.execute("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           (job_id, now, f"Job cancelled: {reason}"))
                self._after_job_end(db, job_id, now)
        if changed:
            self._write_file(self._result_path(job_id), reason)
            self._forget_private_params([job_id])
        return bool(changed)

    def recover(self, lease_seconds: float, max_attempts: int,
                now: float | None = None) -> list[tuple[str, str]]:
        """Requeue or fail Running jobs whose worker stopped renewing its lease.

        Returns ``(job_id, "requeued" | "failed")`` for each job handled. A job that has
        already been tried ``max_attempts`` times fails with a reason instead of looping.
        """
        now = time.time() if now is None else now
        handled: list[tuple[str, str]] = []
        with self._tx() as db:
            stale = db.execute(
                "SELECT id, attempts, claimed_by FROM jobs WHERE status='Running' AND heartbeat<?",
                (now - lease_seconds,)).fetchall()
            for job_id, attempts, worker in stale:
                if attempts < max_attempts:
                    db.execute("UPDATE jobs SET status='Queued', claimed_by=NULL, heartbeat=NULL "
                               "WHERE id=?", (job_id,))
                    line = (f"Worker {worker} stopped responding; job re-queued "
                            f"(attempt {attempts} of {max_attempts}).")
                    handled.append((job_id, "requeued"))
                else:
                    reason = (f"The worker running this job stopped responding {attempts} times "
                              "(crash or out-of-memory kill); the job was not retried again.")
                    db.execute("UPDATE jobs SET status='Failed', reason=?, reason_code=?, "
                               "finished_at=?, heartbeat=NULL WHERE id=?",
                               (reason, int(ReasonCode.WORKER_LOST), now, job_id))
                    self._after_job_end(db, job_id, now)
                    line = f"Job failed: {reason}"
                    handled.append((job_id, "failed"))
                db.execute("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           (job_id, now, line))
        for job_id, outcome in handled:
            if outcome == "failed":
                self._write_file(self._result_path(job_id), self.get_job(job_id).reason or "")
        self._forget_private_params([job_id for job_id, outcome in handled if outcome == "failed"])
        return handled

    def release(self, worker_id: str, now: float | None = None,
                job_ids: Sequence[str] | None = None,
                why: str = "shut down before the job finished") -> list[str]:
        """Requeue the jobs a worker still runs (all, or ``job_ids``), so they need not wait
        for the lease: a stopping worker's, or the batch-mates of a cancelled job.

        The attempt is given back: the job was interrupted, it did not crash anything.
        Its executor's late result is discarded (``finish`` finds it no longer ours).
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE status='Running' AND claimed_by=?", (worker_id,))
                if job_ids is None or r[0] in job_ids]
            db.executemany("UPDATE jobs SET status='Queued', claimed_by=NULL, heartbeat=NULL, "
                           "attempts=MAX(attempts-1, 0) WHERE id=?", [(i,) for i in ids])
            db.executemany("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           [(i, now, f"Worker {worker_id} {why}; job re-queued.")
                            for i in ids])
        return ids

    def prune(self, older_than: float) -> int:
        """Delete final jobs finished before ``older_than`` (retention); returns how many."""
        rows = self._read("SELECT id FROM jobs WHERE status IN ('Completed','Failed','Cancelled') "
                          "AND finished_at<?", (older_than,))
        for row in rows:
            self.delete_job(row[0])
        return len(rows)

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

    # ----------------------------------------------------------------- sessions
    def add_session(self, user_id: str, mode: SessionMode, backend: str | None,
                    max_ttl: int, interactive_ttl: int, now: float | None = None) -> Session:
        session_id = new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (id, user_id, mode, backend, state, accepting_jobs, max_ttl, "
                "interactive_ttl, created) VALUES (?,?,?,?,?,1,?,?,?)",
                (session_id, user_id, mode.value, backend, SessionState.OPEN.value, max_ttl,
                 interactive_ttl, time.time() if now is None else now))
        return self.get_session(session_id)

    def get_session(self, session_id: str) -> Session | None:
        rows = self._read("SELECT * FROM sessions WHERE id=?", (session_id,))
        return Session.from_row(rows[0]) if rows else None

    def list_sessions(self, user_id: str | None = None, limit: int = 50) -> list[Session]:
        """The newest sessions, of one user or of everyone (the dashboard)."""
        where, args = ("WHERE user_id=?", [user_id]) if user_id is not None else ("", [])
        rows = self._read(f"SELECT * FROM sessions {where} ORDER BY created DESC LIMIT ?",
                          (*args, limit))
        return [Session.from_row(r) for r in rows]

    def session_usage_seconds(self, session_id: str) -> float:
        return self._read("SELECT COALESCE(SUM(usage_seconds),0) FROM jobs WHERE session_id=?",
                          (session_id,))[0][0]

    def session_job_count(self, session_id: str) -> int:
        return self._read("SELECT COUNT(*) FROM jobs WHERE session_id=?", (session_id,))[0][0]

    def close_session(self, session_id: str, now: float | None = None) -> None:
        """Stop accepting jobs; the session closes once its queued jobs have run."""
        now = time.time() if now is None else now
        with self._tx() as db:
            db.execute("UPDATE sessions SET accepting_jobs=0 WHERE id=?", (session_id,))
            self._settle_session(db, session_id, now)

    def cancel_session(self, session_id: str, reason: str, now: float | None = None,
                       running_too: bool = True) -> list[str]:
        """Cancel the session's pending jobs (only the Queued ones unless ``running_too``)
        and close it; returns the cancelled job ids."""
        now = time.time() if now is None else now
        statuses = "('Queued','Running')" if running_too else "('Queued')"
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                f"SELECT id FROM jobs WHERE session_id=? AND status IN {statuses}",
                (session_id,))]
            db.executemany(
                "UPDATE jobs SET status='Cancelled', reason=?, reason_code=?, finished_at=?, "
                "heartbeat=NULL WHERE id=?",
                [(reason, int(ReasonCode.SESSION_CLOSED), now, i) for i in ids])
            db.executemany("INSERT INTO job_logs (job_id, ts, message) VALUES (?,?,?)",
                           [(i, now, f"Job cancelled: {reason}") for i in ids])
            db.execute("UPDATE sessions SET state='closed', accepting_jobs=0, "
                       "closed_at=COALESCE(closed_at, ?), close_reason=COALESCE(close_reason, ?) "
                       "WHERE id=?", (now, reason, session_id))
        for job_id in ids:
            self._write_file(self._result_path(job_id), reason)
        self._forget_private_params(ids)
        return ids

    def expire_sessions(self, now: float | None = None) -> list[str]:
        """Close sessions past ``max_ttl``; deactivate those idle past ``interactive_ttl``.

        A session reaching ``max_ttl`` (from its first job's start; from its creation while
        no job has started) closes at once and its queued jobs are cancelled with the
        reason, while a running one completes, as IBM's service does; returns those
        sessions' ids. An active session with no pending job for longer than
        ``interactive_ttl`` goes ``inactive`` (the client's "Pending"): it still accepts
        jobs, which queue like any other until one starts and reactivates it.
        """
        now = time.time() if now is None else now
        rows = self._read(
            "SELECT id, max_ttl, created, activated_at FROM sessions WHERE state!='closed'")
        expired = []
        for sid, max_ttl, created, activated in rows:
            if now - (activated or created) > max_ttl:
                self.cancel_session(
                    sid, f"Session {sid} reached its maximum time to live ({max_ttl} s).", now,
                    running_too=False)
                expired.append(sid)
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET state='inactive' WHERE state='active' "
                "AND COALESCE(last_job_completed, activated_at) < ? - interactive_ttl "
                "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id=sessions.id "
                "AND jobs.status IN ('Queued','Running'))", (now,))
        return expired

    def _after_job_end(self, db: sqlite3.Connection, job_id: str, now: float) -> None:
        row = db.execute("SELECT session_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row and row[0]:
            db.execute("UPDATE sessions SET last_job_completed=? WHERE id=?", (now, row[0]))
            self._settle_session(db, row[0], now)

    @staticmethod
    def _settle_session(db: sqlite3.Connection, session_id: str, now: float) -> None:
        """A session that stopped accepting jobs closes once none is pending.

        One still accepting jobs keeps its state: an ``active`` one (whose next job goes
        first) stays so until its interactive TTL runs out (``expire_sessions``).
        """
        pending = db.execute("SELECT COUNT(*) FROM jobs WHERE session_id=? AND status IN "
                             "('Queued','Running')", (session_id,)).fetchone()[0]
        if not pending:
            db.execute("UPDATE sessions SET state='closed', closed_at=? WHERE id=? "
                       "AND accepting_jobs=0 AND state!='closed'", (now, session_id))

    # --------------------------------------------------------------------- keys
    def add_api_key(self, user_id: str, key_hash: str, admin: bool = False) -> str:
        key_id = new_id()
        with self._tx() as db:
            db.execute("INSERT INTO api_keys (id, user_id, key_hash, admin, created) "
                       "VALUES (?,?,?,?,?)", (key_id, user_id, key_hash, int(admin), time.time()))
        return key_id

    def find_api_key(self, key_hash: str) -> sqlite3.Row | None:
        rows = self._read("SELECT * FROM api_keys WHERE key_hash=? AND revoked_at IS NULL",
                          (key_hash,))
        return rows[0] if rows else None

    def list_api_keys(self) -> list[sqlite3.Row]:
        return self._read("SELECT id, user_id, admin, created, revoked_at FROM api_keys "
                          "ORDER BY created")

    def revoke_api_key(self, key_id: str) -> bool:
        with self._tx() as db:
            return bool(db.execute("UPDATE api_keys SET revoked_at=? WHERE (id=? OR user_id=?) "
                                   "AND revoked_at IS NULL", (time.time(), key_id, key_id)).rowcount)

    def api_key_active(self, key_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM api_keys WHERE id=? AND revoked_at IS NULL",
                               (key_id,)))

    def has_api_keys(self) -> bool:
        return bool(self._read("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"))


__all__ = ["Store", "Job", "Session", "NewJob", "JobQuery", "FINAL_JOB_STATES", "new_id"]
