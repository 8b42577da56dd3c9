"""Runner: threads that claim queued jobs, have a job process run them, record the outcome.

Each server process (gunicorn worker, ``qrs worker`` or ``flask run``) has one ``Runner``
with ``QRS_EXECUTOR_THREADS`` slots and one maintenance thread. A slot is a thread plus
the warm job process it owns (``qrs.jobprocess``): the thread claims a job (or a batch of
small ones, by ``qrs.batching``'s rule), hands it to the process and supervises it
(``qrs.supervision``) — it never executes anything itself. The maintenance thread renews
the leases of this process's running jobs, requeues (or fails) jobs whose process died,
expires sessions and prunes old jobs. Since no simulation runs in this process, leases,
gunicorn heartbeats and held status polls stay responsive whatever a job does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import joblog
from .batching import BatchRule
from .config import Config
from .execution import Completed, JobTask
from .executors.base import BaseExecutor, ExecutorUnavailable
from .jobprocess import JobProcess, pickled_executor
from .states import JobStatus
from .store import Job, Store
from .supervision import (
    Crashed,
    Ending,
    Finished,
    OutOfMemory,
    Stopped,
    Watch,
    failure,
    how_ended,
    supervise,
)
from .wakeup import Wakeup

log = logging.getLogger(__name__)

#: Seconds between retention passes (``QRS_JOB_RETENTION_DAYS``) of one process.
PRUNE_EVERY_SECONDS = 300.0
#: Seconds a slot waits before trying again to start a job process that failed to start.
RESTART_BACKOFF_SECONDS = 5.0


@dataclass
class Slot:
    """One runner thread's job process (``None`` until started, or after it was killed)."""

    name: str
    process: JobProcess | None = None


class Runner:
    """Claims jobs for one server process and supervises the job processes running them."""

    def __init__(
        self,
        store: Store,
        executor: BaseExecutor,
        config: Config,
        on_event: Callable[[str, Job, float], None] | None = None,
        claim: Callable[[str, BatchRule], list[Job]] | None = None,
    ) -> None:
        self.store = store
        #: Takes the next job(s) to execute: ``Store.claim_batch`` (worker id, batch rule),
        #: or a test scenario's (``qrs.testkit.claims``), which holds jobs back and records
        #: scripted outcomes itself, returning only the jobs to execute.
        self.claim = claim or store.claim_batch
        self.executor = executor  # as configured; it is set up in each job process only
        self.executor_name = executor.name
        self._executor_blob = pickled_executor(executor)
        self.config = config
        self.rule = BatchRule.from_config(config)
        self.on_event = on_event or (lambda *_: None)
        self.worker_id = self._new_worker_id()
        self._wake = threading.Condition()
        self._finished = threading.Condition()
        self._stopping = threading.Event()  # take no new job
        self._halted = threading.Event()  # kill running jobs; leases are no longer renewed
        self._threads: list[threading.Thread] = []
        self._slots: list[Slot] = []
        self._spare: JobProcess | None = None  # started by preflight(), taken by a slot
        self._spare_lock = threading.Lock()
        self._drain_slot = Slot("drain")
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self.busy = 0
        self._wakeup = Wakeup(store.data_dir)
        self._next_prune = 0.0

    @staticmethod
    def _new_worker_id() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    # --------------------------------------------------------------- lifecycle
    def preflight(self) -> None:
        """Start one job process now, so a broken executor stops the server's start-up.

        Raises ``ExecutorUnavailable`` with the executor's own message (no GPU, no Dask
        scheduler); otherwise the process stays warm for the first slot that needs one.
        """
        process = self._start_process()
        with self._spare_lock:
            if self._spare is not None:
                self._spare.close()
            self._spare = process

    def start(self) -> None:
        """Start the threads once per process (safe to call on every request)."""
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self.worker_id = self._new_worker_id()
            self._stopping.clear()
            self._halted.clear()
            self._slots = [Slot(f"slot-{i}") for i in range(self.config.executor_threads)]
            self._threads = [
                threading.Thread(
                    target=self._work_loop, args=(slot,), daemon=True, name=f"qrs-runner-{i}"
                )
                for i, slot in enumerate(self._slots)
            ]
            maintenance = threading.Thread(
                target=self._maintenance_loop, daemon=True, name="qrs-maintenance"
            )
            for thread in (*self._threads, maintenance):
                thread.start()
            self._wakeup.listen(self.wake)
            self._pid = os.getpid()
            log.info(
                "runner %s started with %d job slots (%s executor)",
                self.worker_id,
                self.config.executor_threads,
                self.executor_name,
            )

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
        finishing here; the job processes of jobs still running after the grace period
        are killed and those jobs re-queued at once. Every job process is closed.
        """
        self.stop_claiming()
        deadline = time.monotonic() + grace_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._halted.set()
        for thread in self._threads:
            thread.join(5.0)
        for job_id in self.store.release(self.worker_id):
            log.warning(
                "job %s re-queued: worker %s stopped before it finished", job_id, self.worker_id
            )
        for slot in (*self._slots, self._drain_slot):
            self._retire(slot, close=True)
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()
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
    def _work_loop(self, slot: Slot) -> None:
        idle = self.config.poll_interval_ms / 1000
        while not self._stopping.is_set():
            try:
                ran = self.run_one(slot)
            except ExecutorUnavailable as exc:  # no job process: claim nothing, retry later
                log.error("cannot start a job process: %s", exc)
                self._stopping.wait(RESTART_BACKOFF_SECONDS)
                ran = False
            except Exception:  # the loop must survive anything, e.g. a locked disk
                log.exception("runner loop error")
                ran = False
            if not ran:
                with self._wake:
                    self._wake.wait(idle)
        if self._halted.is_set() or self._stopping.is_set():
            self._retire(slot, close=True)

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
        for job_id, outcome in self.store.recover(
            self.config.job_lease_seconds, self.config.max_attempts, now
        ):
            log.warning(
                "job %s %s after its worker stopped responding",
                job_id,
                outcome,
                extra={"job_id": job_id},
            )
        if self.store.expire_sessions(now):
            self._notify_finished()
        if self.config.job_retention_days > 0 and time.monotonic() >= self._next_prune:
            # Retention is in days: once every few minutes per process is plenty, and it
            # spares a scan of all finished jobs on every heartbeat.
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            self.store.prune(now - self.config.job_retention_days * 86400)
        self.wake()

    # ----------------------------------------------------------- job processes
    def _start_process(self) -> JobProcess:
        process = JobProcess.start(self.config, self._executor_blob)
        self.executor_name = process.executor_name
        return process

    def _process_for(self, slot: Slot) -> JobProcess:
        """The slot's warm job process: its own, the preflight one, or a new one."""
        if slot.process is not None and slot.process.alive:
            return slot.process
        self._retire(slot)
        with self._spare_lock:
            slot.process, self._spare = self._spare, None
        if slot.process is None or not slot.process.alive:
            slot.process = self._start_process()
        return slot.process

    @staticmethod
    def _retire(slot: Slot, close: bool = False) -> None:
        """Drop the slot's process: closed politely (shutdown) or killed (anything else)."""
        process, slot.process = slot.process, None
        if process is not None:
            process.close() if close else process.kill()

    # ------------------------------------------------------------- one job
    def run_one(self, slot: Slot | None = None) -> bool:
        """Claim and run one job (or one batch of small ones) to its end.

        Returns False when nothing was runnable. Without a slot (tests, tools), the job
        runs in the runner's drain slot from the calling thread.
        """
        slot = slot or self._drain_slot
        process = self._process_for(slot)  # before claiming: no process, no claim
        jobs = self.claim(self.worker_id, self.rule)
        if not jobs:
            return False
        for job in jobs:
            self.on_event("started", job, 0.0)
        self.busy += 1
        try:
            self._run(slot, process, jobs)
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

    def _run(self, slot: Slot, process: JobProcess, jobs: list[Job]) -> None:
        """Hand the jobs to the slot's process, supervise them and record how they ended."""
        tasks = []
        for job in jobs:
            try:
                tasks.append(
                    JobTask(job.id, job.program_id, job.backend, self.store.job_params(job.id))
                )
            except OSError:  # deleted while it was claimed
                self.store.fail(job.id, self.worker_id, "The job's params are gone.")
        tasks_ids = {task.job_id for task in tasks}
        jobs = [job for job in jobs if job.id in tasks_ids]
        if not jobs:
            return
        ids = [job.id for job in jobs]
        self.store.log(
            ids,
            f"Running in job process {process.pid} "
            f"({process.executor_name} executor, {process.tasks_run} "
            "task(s) run there before).",
        )
        chars = self.config.max_log_line_chars  # job lines carry user input (options)
        watch = Watch(
            time_limit=self._time_limit(jobs),
            memory_mb=self.config.job_memory_mb,
            cancelled=lambda: not any(self._still_ours(job_id) for job_id in ids),
            halted=self._halted,
            on_log=lambda line: self.store.log(ids, joblog.clip(line, chars)),
        )
        ending = supervise(process, tasks, watch)
        if not isinstance(ending, Finished) or any(
            getattr(o, "recycle", False) for o in ending.outcomes
        ):
            self._retire(slot)  # killed, dead, or poisoned by a failed allocation
        if isinstance(ending, (Crashed, OutOfMemory)) and len(jobs) > 1:
            # Find the culprit: every job of the batch again, alone, in a fresh process.
            self.store.log(
                ids,
                f"The batch's job process {how_ended(ending)}; each job of the "
                "batch runs again on its own.",
            )
            for job in jobs:
                self._run(slot, self._process_for(slot), [job])
            return
        self._record(jobs, ending)

    def _still_ours(self, job_id: str) -> bool:
        job = self.store.get_job(job_id)
        return (
            job is not None
            and job.status == JobStatus.RUNNING
            and job.claimed_by == self.worker_id
        )

    def _record(self, jobs: list[Job], ending: Ending) -> None:
        """Store each job's end; a job cancelled meanwhile keeps its cancellation."""
        seconds = ending.seconds / len(jobs)
        if isinstance(ending, Finished):
            for job, outcome in zip(jobs, ending.outcomes):
                if isinstance(outcome, Completed):
                    if self.store.finish(job.id, self.worker_id, outcome.result_text, seconds):
                        self.on_event("completed", job, seconds)
                elif self.store.fail(
                    job.id,
                    self.worker_id,
                    outcome.message,
                    outcome.reason_code,
                    usage_seconds=seconds,
                ):
                    self.on_event("failed", job, seconds)
            return
        if isinstance(ending, Stopped):  # cancelled (already recorded) or shutting down
            return
        status, code, message = failure(ending)
        for job in jobs:
            if self.store.fail(
                job.id, self.worker_id, message, code, usage_seconds=seconds, status=status
            ):
                self.on_event(
                    "cancelled" if status == JobStatus.CANCELLED else "failed", job, seconds
                )

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
