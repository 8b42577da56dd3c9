"""Prometheus metrics (``GET /metrics``), summed over every gunicorn worker.

prometheus-client runs in multiprocess mode: each process writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any one worker, adds them up.
The client library reads that variable when it is first imported, so ``enable()`` must
run before anything imports ``prometheus_client`` — ``create_app`` calls it first thing,
and gunicorn's master calls ``reset()`` before it forks (gunicorn.conf.py).

Counters move from two places only: ``count_submitted`` in ``POST /jobs`` and
``on_job_event``, the runner's event hook. Queue depth is not counted at all: it is read
from the store at scrape time, so it is right whichever process changed the queue.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Job, Store

ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Job duration buckets, seconds: tiny noisy jobs take milliseconds, heavy ones minutes.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
)


def _pid_of(path: Path) -> int | None:
    """The writer's pid from a prometheus-client file name (``counter_1234.db``)."""
    try:
        return int(path.stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reset(folder: str | os.PathLike) -> None:
    """Empty ``folder`` of metric files and point ``PROMETHEUS_MULTIPROC_DIR`` at it.

    For a process that owns the folder and has no workers yet (gunicorn's master before
    it forks): every file there is stale.
    """
    path = Path(folder)
    if path.is_dir():
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)


def enable(data_dir: str | os.PathLike) -> Path:
    """Use ``<data_dir>/metrics`` unless ``PROMETHEUS_MULTIPROC_DIR`` is already set.

    Cleaning here is safe under any launcher: only files whose writer process no longer
    exists are removed (a gunicorn master already set the variable, so nothing is).
    """
    preset = os.environ.get(ENV)
    path = Path(preset) if preset else Path(data_dir) / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    if not preset:
        for stale in path.glob("*.db"):
            pid = _pid_of(stale)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                stale.unlink(missing_ok=True)
        os.environ[ENV] = str(path)
    _multiprocess_values()
    _get()
    return path


def _multiprocess_values() -> None:
    """Make prometheus-client write to files even if it was imported before ``ENV`` was set
    (it picks its value class at import time; an embedding app may have imported it)."""
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]


def mark_process_dead(pid: int) -> None:
    """gunicorn ``child_exit``: drop a dead worker's live gauges (its counters stay)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class _Metrics:
    """The metric objects, created on first use (after ``enable``)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ("program", "backend")
        self.submitted = Counter("qrs_jobs_submitted", "Jobs accepted by POST /jobs.", labels)
        self.started = Counter("qrs_jobs_started", "Jobs a runner claimed and started.", labels)
        self.completed = Counter("qrs_jobs_completed", "Jobs that completed.", labels)
        self.failed = Counter("qrs_jobs_failed", "Jobs that failed.", labels)
        self.cancelled = Counter(
            "qrs_jobs_cancelled", "Jobs cancelled (by a user or a time limit).", labels
        )
        self.duration = Histogram(
            "qrs_job_duration_seconds",
            "Execution time of finished jobs.",
            labels,
            buckets=DURATION_BUCKETS,
        )
        self.busy = Gauge(
            "qrs_executor_busy_threads",
            "Runner threads executing a job now.",
            multiprocess_mode="livesum",
        )
        self.by_kind = {
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "started": self.started,
        }


_metrics: _Metrics | None = None
_lock = threading.Lock()
log = logging.getLogger(__name__)


def _get() -> _Metrics:
    """The process's metric objects; registering them twice would raise, hence the lock."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()
        return _metrics


def count_submitted(program: str, backend: str) -> None:
    """``POST /jobs`` accepted a job (the runner counts everything after that)."""
    _get().submitted.labels(program, backend).inc()


def count_cancelled(program: str, backend: str) -> None:
    """A user cancelled the job through the API (the runner reports time-limit cancels)."""
    _get().cancelled.labels(program, backend).inc()


def on_job_event(kind: str, job: Job, seconds: float) -> None:
    """The runner's ``on_event`` hook: started/completed/failed/cancelled/released.

    Never raises: a metrics problem must not leave a claimed job unrun.
    """
    try:
        _record_event(kind, job, seconds)
    except Exception:
        log.exception("metrics: could not record %s of job %s", kind, job.id)


def _record_event(kind: str, job: Job, seconds: float) -> None:
    metrics = _get()
    if kind == "started":
        metrics.busy.inc()
    elif kind == "released":
        metrics.busy.dec()
    counter = metrics.by_kind.get(kind)
    if counter is not None:
        counter.labels(job.program_id, job.backend).inc()
    if kind in ("completed", "failed", "cancelled"):
        metrics.duration.labels(job.program_id, job.backend).observe(seconds)


class _StoreCollector:
    """Gauges read from the store when scraped: right whichever worker changed them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterable:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily("qrs_queue_depth", "Jobs waiting to run (Queued).")
        depth.add_metric([], self.store.queue_depth())
        yield depth
        pending = GaugeMetricFamily(
            "qrs_backend_pending_jobs", "Queued or running jobs per backend.", labels=["backend"]
        )
        for backend, count in sorted(self.store.backend_queue_lengths().items()):
            pending.add_metric([backend], count)
        yield pending
        free = GaugeMetricFamily(
            "qrs_data_disk_free_bytes", "Free space on the data directory's file system."
        )
        free.add_metric([], shutil.disk_usage(self.store.data_dir).free)
        yield free


def exposition(store: Store) -> tuple[bytes, str]:
    """The text a scrape returns, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    _get()  # so a fresh worker's metrics exist (at zero) before its first job
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(_StoreCollector(store))
    return generate_latest(registry), CONTENT_TYPE_LATEST
