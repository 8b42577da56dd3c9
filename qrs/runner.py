"""Runner: background threads that claim queued jobs, execute them, record the outcome.

Each process (gunicorn worker or ``flask run``) has one ``Runner`` with
``QRS_EXECUTOR_THREADS`` worker threads and one maintenance thread. Workers claim jobs
from the store atomically, so any number of processes can run side by side. The
maintenance thread renews the leases of this process's running jobs, requeues (or
fails) jobs whose process died, expires sessions and prunes old jobs.

A job's executor call runs in its own thread so the worker can enforce the job's time
limit and notice a cancel; a job given up on stops at its executor's next
``joblog.checkpoint()``, and its late result is discarded by the store.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

from . import joblog
from .codec import decode_params, encode_result
from .config import Config
from .errors import QRSError
from .executors.base import BaseExecutor, JobRefused
from .states import JobStatus, ReasonCode
from .store import Job, Store

log = logging.getLogger(__name__)


class Runner:
    """Claims and executes jobs for one process."""

    def __init__(self, store: Store, executor: BaseExecutor, config: Config,
                 on_event: Callable[[str, Job, float], None] | None = None) -> None:
        self.store = store
        self.executor = executor
        self.config = config
        self.on_event = on_event or (lambda *_: None)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Condition()
        self._finished = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self.busy = 0

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the threads once per process (safe to call on every request)."""
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
            self._stopping.clear()
            self._threads = [threading.Thread(target=self._work_loop, daemon=True,
                                              name=f"qrs-runner-{i}")
                             for i in range(self.config.executor_threads)]
            self._threads.append(threading.Thread(target=self._maintenance_loop, daemon=True,
                                                  name="qrs-maintenance"))
            for thread in self._threads:
                thread.start()
            self._pid = os.getpid()
            log.info("runner %s started with %d executor threads (%s executor)",
                     self.worker_id, self.config.executor_threads, self.executor.name)

    @property
    def alive(self) -> bool:
        """True when this process's runner threads are running (readiness probe)."""
        return self._pid == os.getpid() and all(t.is_alive() for t in self._threads)

    def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop claiming; give running jobs up to ``grace_seconds`` to finish."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + grace_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pid = None

    def wake(self) -> None:
        """New work arrived: wake one idle worker thread at once."""
        with self._wake:
            self._wake.notify()

    # ------------------------------------------------------------------- loops
    def _work_loop(self) -> None:
        idle = self.config.poll_interval_ms / 1000
        while not self._stopping.is_set():
            try:
                ran = self.run_one()
            except Exception:  # the loop must survive anything, e.g. a locked disk
                log.exception("runner loop error")
                ran = False
            if not ran:
                with self._wake:
                    self._wake.wait(idle)

    def _maintenance_loop(self) -> None:
        period = min(self.config.heartbeat_seconds, self.config.job_lease_seconds / 3)
        while not self._stopping.wait(period):
            try:
                self.maintain()
            except Exception:
                log.exception("maintenance error")

    def maintain(self, now: float | None = None) -> None:
        """Heartbeat, recover orphaned jobs, expire sessions, apply retention."""
        now = time.time() if now is None else now
        self.store.heartbeat(self.worker_id, now)
        for job_id, outcome in self.store.recover(self.config.job_lease_seconds,
                                                  self.config.max_attempts, now):
            log.warning("job %s %s after its worker stopped responding", job_id, outcome,
                        extra={"job_id": job_id})
        if self.store.expire_sessions(now):
            self._notify_finished()
        if self.config.job_retention_days > 0:
            self.store.prune(now - self.config.job_retention_days * 86400)
        self.wake()

    # ------------------------------------------------------------- one job
    def run_one(self) -> bool:
        """Claim and run one job to its end; False when nothing was runnable."""
        job = self.store.claim(self.worker_id)
        if job is None:
            return False
        self.on_event("started", job, 0.0)
        self.busy += 1
        try:
            self._supervise(job)
        finally:
            self.busy -= 1
            self.on_event("released", job, 0.0)
            self._notify_finished()
        return True

    def drain(self, timeout: float = 60.0) -> int:
        """Run jobs in this thread until none is runnable (tests); returns how many ran."""
        count, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_one():
            count += 1
        return count

    def _time_limit(self, job: Job) -> float:
        limit = self.config.max_execution_time
        if job.max_execution_time:
            limit = min(limit, job.max_execution_time)
        return float(limit)

    def _supervise(self, job: Job) -> None:
        """Run the job in a helper thread; enforce its time limit and notice cancels."""
        context = joblog.JobContext(job.id, sink=lambda line: self.store.log(job.id, line))
        outcome: dict[str, Any] = {}
        started = time.monotonic()
        thread = threading.Thread(target=self._execute, args=(job, context, outcome),
                                  daemon=True, name=f"qrs-job-{job.id}")
        thread.start()
        limit = self._time_limit(job)
        while True:
            thread.join(min(0.5, max(0.0, limit - (time.monotonic() - started))))
            if not thread.is_alive():
                break
            elapsed = time.monotonic() - started
            if elapsed >= limit:
                context.stop_reason = "time limit"
                context.stop.set()
                message = (f"Job ran longer than its maximum execution time of {limit:.0f} s "
                           "(options.max_execution_time / QRS_MAX_EXECUTION_TIME).")
                self.store.fail(job.id, self.worker_id, message, ReasonCode.RAN_TOO_LONG,
                                usage_seconds=elapsed, status=JobStatus.CANCELLED)
                self.on_event("cancelled", job, elapsed)
                return
            current = self.store.get_job(job.id)
            if current is None or current.status != JobStatus.RUNNING:
                context.stop_reason = "cancelled"
                context.stop.set()
                return
        self._record(job, outcome, time.monotonic() - started)

    def _execute(self, job: Job, context: joblog.JobContext, outcome: dict[str, Any]) -> None:
        """Decode, execute, encode: the whole job, in the job's own thread."""
        with joblog.bound(context):
            try:
                params = decode_params(self.store.job_params(job.id), job.program_id)
                joblog.emit(f"Executing {len(params.pubs)} pub(s) on {job.backend} with the "
                            f"{self.executor.name} executor.")
                run = {"sampler": self.executor.execute_sampler,
                       "estimator": self.executor.execute_estimator}.get(job.program_id)
                if run is None:
                    raise JobRefused(f"Program '{job.program_id}' is not supported.")
                outcome["result"] = encode_result(run(params.pubs, params.options, job.backend))
            except joblog.JobAborted:
                outcome["aborted"] = True
            except (JobRefused, QRSError, ValueError, TypeError) as exc:
                outcome["error"] = str(getattr(exc, "message", exc)) or type(exc).__name__
            except Exception as exc:  # an executor bug or an Aer error: the job fails, not us
                log.exception("job %s failed", job.id)
                outcome["error"] = f"{type(exc).__name__}: {exc}"

    def _record(self, job: Job, outcome: dict[str, Any], elapsed: float) -> None:
        log.debug("job %s ran %.3f s: %s", job.id, elapsed,
                  "error" if "error" in outcome else "result", extra={"job_id": job.id})
        if "result" in outcome:
            if self.store.finish(job.id, self.worker_id, outcome["result"], elapsed):
                self.on_event("completed", job, elapsed)
        elif "error" in outcome:
            if self.store.fail(job.id, self.worker_id, outcome["error"], usage_seconds=elapsed):
                self.on_event("failed", job, elapsed)

    # ------------------------------------------------------------------ waiting
    def _notify_finished(self) -> None:
        with self._finished:
            self._finished.notify_all()

    def wait_final(self, job_id: str, timeout: float) -> Job | None:
        """The job once final, or as it is after ``timeout`` seconds.

        Woken at once by this process's runner; jobs run by another process are seen
        by re-reading the row every few milliseconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get_job(job_id)
            remaining = deadline - time.monotonic()
            if job is None or job.status.final or remaining <= 0:
                return job
            with self._finished:
                self._finished.wait(min(remaining, 0.02))
