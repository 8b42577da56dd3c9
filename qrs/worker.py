"""``qrs worker``: a runner process without HTTP, for the usual production layout.

gunicorn's web workers then run with ``QRS_START_RUNNER=0`` (they answer the API and
never start a job process) and N ``qrs worker`` processes claim and run the jobs — on
the same machine or any machine that shares the data directory's filesystem. Each has
``QRS_EXECUTOR_THREADS`` slots, each slot its own warm job process.

SIGTERM: take no new job, let running ones finish for ``QRS_SHUTDOWN_GRACE_SECONDS``,
then kill their job processes and re-queue them (the attempt is given back). SIGINT:
the same without waiting.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    from .executors.base import BaseExecutor

log = logging.getLogger(__name__)


def run_worker(config: Config, executor: BaseExecutor | None = None) -> int:
    """Run jobs until SIGTERM or SIGINT; returns the exit status."""
    from . import _import_qiskit_in_this_thread, metrics
    from .executors.base import resolve
    from .logs import configure_logging
    from .runner import Runner
    from .store import Store

    metrics.enable(config.data_dir)
    configure_logging(config)
    _import_qiskit_in_this_thread()
    from .testkit import create as create_testkit

    store = Store(config.data_dir)
    testkit = create_testkit(config, store)  # a test scenario holds and scripts jobs here too
    runner = Runner(
        store,
        executor or resolve(config.executor),
        config,
        on_event=metrics.on_job_event,
        claim=testkit.claim if testkit else None,
    )
    runner.preflight()  # a broken executor stops here, before any job is claimed
    stop = threading.Event()
    deadline: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        if not deadline:
            grace = config.shutdown_grace_seconds if signum == signal.SIGTERM else 0.0
            deadline.append(time.monotonic() + grace)
            log.info(
                "worker %s: %s, taking no new job (grace %.0f s)",
                runner.worker_id,
                signal.Signals(signum).name,
                grace,
            )
        runner.stop_claiming()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    log.info("worker %s running jobs from %s", runner.worker_id, config.data_dir)
    stop.wait()
    runner.stop(grace_seconds=max(0.0, deadline[0] - time.monotonic()))
    log.info("worker %s stopped", runner.worker_id)
    return 0
