"""gunicorn settings for QRS: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Values come from the same ``QRS_*`` variables as the app (``Config.from_env``).
Each worker process builds its own app (no preload: qiskit and the SQLite connections
must not be shared across fork) and starts its runner threads after it boots; the store
is the only state workers share, so any number of workers is safe.
"""

import os
from pathlib import Path

from qrs import metrics
from qrs.config import Config

_config = Config.from_env()

bind = f"{_config.host}:{_config.port}"
workers = _config.workers
# Threads per worker: status polls may be held up to QRS_STATUS_WAIT_MS, so a worker
# needs spare request threads besides the runner's executor threads.
threads = 16
worker_class = "gthread"
preload_app = False
timeout = 120               # a request never takes this long; jobs run outside requests
graceful_timeout = 60       # SIGTERM: running jobs get this long to finish
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
loglevel = _config.log_level.lower()


def on_starting(server):
    """Before any worker exists: start the workers' shared metrics folder empty."""
    metrics.reset(os.environ.get(metrics.ENV) or Path(_config.data_dir) / "metrics")


def child_exit(server, worker):
    """A worker is gone: drop its live gauges so busy threads add up correctly."""
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start this worker's runner at boot, so queued jobs run after a restart."""
    registry = worker.wsgi.extensions["qrs"]
    if registry.config.start_runner:
        registry.runner.start()


def worker_exit(server, worker):
    """Graceful stop: stop claiming, let running jobs finish within the grace period."""
    registry = worker.wsgi.extensions.get("qrs") if hasattr(worker, "wsgi") else None
    if registry is not None:
        registry.runner.stop(grace_seconds=graceful_timeout - 5)
