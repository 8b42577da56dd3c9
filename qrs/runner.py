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
from .quantum_program import EXECUTOR_PROGRAM, run_job as run_program_job
from .states import JobStatus, ReasonCode
from .store import Job, Store
from .wakeup import Wakeup

log = logging.getLogger(__name__)

#: Seconds between retention passes (``QRS_JOB_RETENTION_DAYS``) of one process.
PRUNE_EVERY_SECONDS = 300.0


class Runner:
    """Claims and executes jobs for one process."""

    def __init__(self, store: Store, executor: BaseExecutor, config: Config,
                 on_event: Callable[[str, Job, float], None] | None = None,
                 claim: Callable[[str, int, int], list[Job]] | None = None) -> None:
        self.store = store
        #: Takes the next job(s) to execute: ``Store.claim_batch`` (worker id, batch size,
        #: batch width), or a test scenario's (``qrs.testkit.claims``), which holds jobs
        #: back and records scripted outcomes itself, returning only jobs to execute.
        self.claim = claim or store.claim_batch
        self.executor = executor
        self.config = config
        self.on_event = on_event or (lambda *_: None)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Condition()
        self._finished = threading.Condition()
        self._stopping = threading.Event()   # take no new job
        self._halted = threading.Event()     # maintenance too: leases are no longer renewed
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self.busy = 0
        self._wakeup = Wakeup(store.data_dir)
        self._next_prune = 0.0

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
            self._halted.clear()
            self._threads = [threading.Thread(target=self._work_loop, daemon=True,
                                              name=f"qrs-runner-{i}")
                             for i in range(self.config.executor_threads)]
            maintenance = threading.Thread(target=self._maintenance_loop, daemon=True,
                                           name="qrs-maintenance")
            for thread in (*self._threads, maintenance):
                thread.start()
            self._wakeup.listen(self.wake)
            self._pid = os.getpid()
            log.info("runner %s started with %d executor threads (%s executor)",
                     self.worker_id, self.config.executor_threads, self.executor.name)

    @property
    def alive(self) -> bool:
        """True when this process's runner threads are running (readiness probe)."""
        return self._pid == os.getpid() and all(t.is_alive() for t in self._threads)

    def stop_claiming(self) -> None:
        """Take no new job (a SIGTERM arrived); running jobs go on and keep their leases."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()

    def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop claiming; give running jobs up to ``grace_seconds`` to finish.

        Leases are renewed until then, so no other process takes a job that is still
        finishing here; jobs still running after the grace period are re-queued at once.
        """
        self.stop_claiming()
        deadline = time.monotonic() + grace_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._halted.set()
        for job_id in self.store.release(self.worker_id):
            log.warning("job %s re-queued: worker %s stopped before it finished",
                        job_id, self.worker_id)
        self._pid = None

    def wake(self) -> None:
        """New work arrived: wake one idle worker thread of this process at once."""
        with self._wake:
            self._wake.notify()

    def announce(self) -> None:
        """A job was queued here: wake a runner thread here and in every other process."""
        self.wake()
        self._wakeup.notify()

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
        while not self._halted.wait(period):
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
        if self.config.job_retention_days > 0 and time.monotonic() >= self._next_prune:
            # Retention is in days: once every few minutes per process is plenty, and it
            # spares a scan of all finished jobs on every heartbeat.
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            self.store.prune(now - self.config.job_retention_days * 86400)
        self.wake()

    # ------------------------------------------------------------- one job
    def run_one(self) -> bool:
        """Claim and run one job (or one batch of small ones) to its end.

        Returns False when nothing was runnable.
        """
        jobs = self.claim(self.worker_id, self.config.batch_max_jobs,
                          self.config.batch_max_qubits)
        if not jobs:
            return False
        for job in jobs:
            self.on_event("started", job, 0.0)
        self.busy += 1
        try:
            self._supervise(jobs)
        finally:
            self.busy -= 1
            for job in jobs:  # one per "started", so the busy gauge returns to zero
                self.on_event("released", job, 0.0)
            self._notify_finished()
        return True

    def drain(self, timeout: float = 60.0) -> int:
        """Run jobs in this thread until none is runnable (tests); returns how many ran."""
        count, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_one():
            count += 1
        return count

    def _time_limit(self, jobs: list[Job]) -> float:
        limits = [self.config.max_execution_time]
        limits += [job.max_execution_time for job in jobs if job.max_execution_time]
        return float(min(limits))

    def _supervise(self, jobs: list[Job]) -> None:
        """Run the jobs in a helper thread; enforce the time limit and notice cancels."""
        ids = [job.id for job in jobs]
        context = joblog.JobContext(",".join(ids), sink=lambda line: self.store.log(ids, line))
        outcome: dict[str, Any] = {}
        started = time.monotonic()
        thread = threading.Thread(target=self._execute, args=(jobs, context, outcome),
                                  daemon=True, name=f"qrs-job-{ids[0]}")
        thread.start()
        limit = self._time_limit(jobs)
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
                for job in jobs:
                    if self.store.fail(job.id, self.worker_id, message, ReasonCode.RAN_TOO_LONG,
                                       usage_seconds=elapsed, status=JobStatus.CANCELLED):
                        self.on_event("cancelled", job, elapsed)
                return
            if all((current := self.store.get_job(job.id)) is None
                   or current.status != JobStatus.RUNNING for job in jobs):
                context.stop_reason = "cancelled"
                context.stop.set()
                return
        elapsed = time.monotonic() - started
        for job in jobs:
            self._record(job, outcome.get(job.id, {}), elapsed / len(jobs))

    def _execute(self, jobs: list[Job], context: joblog.JobContext,
                 outcome: dict[str, Any]) -> None:
        """Decode, execute, encode: the whole job (or batch), in its own thread."""
        with joblog.bound(context):
            if jobs[0].program_id == EXECUTOR_PROGRAM:  # a QuantumProgram, never batched
                outcome[jobs[0].id] = self._run_program(jobs[0])
                return
            decoded = {}
            for job in jobs:
                try:
                    decoded[job.id] = decode_params(self.store.job_params(job.id),
                                                    job.program_id)
                except Exception as exc:
                    outcome[job.id] = {"error": _message(exc)}
            runnable = [job for job in jobs if job.id in decoded]
            if not runnable:
                return
            pubs = sum(len(decoded[job.id].pubs) for job in runnable)
            joblog.emit(f"Executing {pubs} pub(s) on {jobs[0].backend} with the "
                        f"{self.executor.name} executor"
                        + (f", batched with {len(runnable) - 1} other job(s)." if len(runnable) > 1
                           else "."))
            if len(runnable) > 1:
                results = self.executor.execute_sampler_batch(
                    [(decoded[job.id].pubs, decoded[job.id].options) for job in runnable],
                    jobs[0].backend)
            else:
                results = [self._call_executor(runnable[0], decoded[runnable[0].id])]
            for job, result in zip(runnable, results):
                outcome[job.id] = self._encode(job, result)

    def _call_executor(self, job: Job, params: Any) -> Any:
        """Run one job's pubs; an exception is returned, not raised, like batch results."""
        run = {"sampler": self.executor.execute_sampler,
               "estimator": self.executor.execute_estimator}.get(job.program_id)
        try:
            if run is None:
                raise JobRefused(f"Program '{job.program_id}' is not supported.")
            return run(params.pubs, params.options, job.backend)
        except joblog.JobAborted as exc:
            return exc
        except Exception as exc:
            return exc

    def _run_program(self, job: Job) -> dict[str, Any]:
        """Run one ``executor`` job: decoding and encoding are the program module's."""
        try:
            return {"result": run_program_job(self.executor, self.store.job_params(job.id),
                                              job.backend)}
        except Exception as exc:
            return self._encode(job, exc)

    @staticmethod
    def _encode(job: Job, result: Any) -> dict[str, Any]:
        if isinstance(result, joblog.JobAborted):
            return {"aborted": True}
        if isinstance(result, Exception):
            if not isinstance(result, (JobRefused, QRSError, ValueError, TypeError)):
                log.error("job %s failed: %r", job.id, result)
            return {"error": _message(result)}
        try:
            return {"result": encode_result(result)}
        except Exception as exc:
            log.exception("job %s: result could not be encoded", job.id)
            return {"error": f"The result could not be encoded: {_message(exc)}"}

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


def _message(exc: BaseException) -> str:
    """The text a user sees for a failure: a typed error's message, else type and text."""
    if isinstance(exc, (JobRefused, QRSError)):
        return str(getattr(exc, "message", exc))
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
