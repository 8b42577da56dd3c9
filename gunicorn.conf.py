"""gunicorn settings for QRS: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``qrs serve``).

Values come from the same ``QRS_*`` variables as the app (``Config.from_env``); set the
worker count with ``QRS_WORKERS``, not ``gunicorn -w``, because the app divides the cores
between workers from it (``QRS_EXECUTOR_THREADS`` and Aer's thread count).

Each worker process builds its own app (no preload: qiskit and the SQLite connections
must not be shared across fork) and starts its runner threads once it has booted; the
store is the only state workers share, so any number of workers is safe.

Shutdown: on SIGTERM (``systemctl stop``, ``kill -TERM <master>``, a ``HUP`` reload) a
worker stops claiming jobs at once, finishes the requests it has, lets its running jobs
finish for up to ``graceful_timeout - 5`` seconds, then re-queues any job still running
so another worker (or the restarted server) runs it. SIGINT/SIGQUIT (quick stop) re-queue
running jobs without waiting. A SIGKILLed worker cannot do either: its jobs are re-queued
by the other workers once their lease (``QRS_JOB_LEASE_SECONDS``) runs out.
"""

import os
import signal
import time
from pathlib import Path

from qrs import metrics
from qrs.config import Config

_config = Config.from_env()

# -- sockets and processes ---------------------------------------------------------
bind = f"{_config.host}:{_config.port}"
#: Worker processes. Each runs QRS_EXECUTOR_THREADS jobs at once besides serving requests.
workers = _config.workers
#: gthread: request threads per worker. A status poll may be held up to
#: QRS_STATUS_WAIT_MS, so a worker needs spare request threads; jobs run in the runner's
#: own threads, never in these.
worker_class = "gthread"
threads = 16
#: Off: every worker imports qiskit and opens SQLite itself, after the fork.
preload_app = False

# -- timeouts ----------------------------------------------------------------------
#: A worker silent this long is killed and replaced. Requests are short (jobs run
#: outside requests), so this only catches a hung worker.
timeout = 120
#: SIGTERM → SIGKILL: how long a stopping worker may take (running jobs get 5 s less).
graceful_timeout = 60
#: Seconds an idle keep-alive connection stays open (nginx keeps its own pool).
keepalive = 5

# -- logging -----------------------------------------------------------------------
accesslog = "-"
#: client, request line, status, bytes, seconds taken (gunicorn's %(L)s).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
loglevel = _config.log_level.lower()

#: Seconds of graceful_timeout kept back for re-queueing leftovers and exiting before the
#: master's SIGKILL; running jobs get the rest (``worker.qrs_grace_deadline`` marks it).
_GRACE_MARGIN = 5


def _registry(worker):
    """The app's ``Registry``; ``None`` in the master or in a worker whose app failed."""
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", None) or {}
    return extensions.get("qrs")


def on_starting(server):
    """Before any worker exists: set the data directory up once (database schema, token
    signing secret), so workers booting together never race to create them, and start
    the workers' shared metrics folder empty."""
    from qrs import prepare_data_dir

    prepare_data_dir(_config)
    metrics.reset(os.environ.get(metrics.ENV) or Path(_config.data_dir) / "metrics")


def child_exit(server, worker):
    """A worker is gone: drop its live gauges so busy threads add up correctly."""
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start this worker's runner at boot (so queued jobs run after a restart) and stop
    its claiming the moment SIGTERM arrives, not only once the worker exits."""
    registry = _registry(worker)
    if registry is None:
        return
    if registry.config.start_runner:
        registry.runner.start()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        if getattr(worker, "qrs_grace_deadline", None) is None:
            grace = max(0, worker.cfg.graceful_timeout - _GRACE_MARGIN)
            worker.qrs_grace_deadline = time.monotonic() + grace
        registry.runner.stop_claiming()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_int(worker):
    """Quick stop (SIGINT/SIGQUIT): re-queue running jobs now instead of waiting."""
    worker.qrs_grace_deadline = time.monotonic()


def worker_exit(server, worker):
    """Let running jobs finish until the grace deadline, then re-queue what is left.

    gunicorn ≥ 20 (27 included) calls this in the worker process after its loop ends,
    and in the master for a worker that was already gone (no app there: nothing to do).
    """
    registry = _registry(worker)
    if registry is None:
        return
    deadline = getattr(worker, "qrs_grace_deadline", None)
    if deadline is None:  # exiting for another reason (max_requests, a boot error)
        deadline = time.monotonic() + max(0, server.cfg.graceful_timeout - _GRACE_MARGIN)
    # Stops the job processes too (their executors close: e.g. a Dask LocalCluster).
    registry.runner.stop(grace_seconds=max(0.0, deadline - time.monotonic()))
