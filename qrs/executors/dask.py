"""DaskExecutor: a job's pubs run as tasks on a Dask cluster.

``QRS_DASK_SCHEDULER=tcp://host:8786`` connects to a running cluster; ``local`` starts a
``LocalCluster`` of ``QRS_DASK_WORKERS`` processes for development. Workers need the
same ``qrs``, ``qiskit``, ``qiskit-aer`` and ``qiskit-ibm-runtime`` as the server.

Why whole pubs as tasks, not Aer's ``executor=`` / ``max_job_size`` options: in
qiskit-aer 0.18 ``AerBackend.run`` always submits to Aer's own thread pool (the
``executor`` option is read nowhere on that path) and the ``max_job_size`` splitting
(``AerJobSet``) is gone, so those options no longer distribute anything. A pub is also
the natural unit: the worker runs the primitive's pre- and post-processing (estimator
basis rotations, bit packing) next to the simulator, ships back a small ``PubResult``
instead of raw counts, and builds each backend's noise model once per worker process
(the ``LocalExecutor`` caches) rather than receiving it pickled with every circuit.
The pubs of one job run in parallel across workers; a single pub is never split.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .. import joblog
from ..config import Config, _cpu_count
from .base import BaseExecutor, ExecutorUnavailable
from .local import LocalExecutor

if TYPE_CHECKING:
    from ..metadata import BackendMetadataProvider

log = logging.getLogger(__name__)

#: Seconds between checks for a cancelled job while waiting for a task.
POLL_SECONDS = 0.5

_worker_executors: dict[Config, LocalExecutor] = {}
_worker_lock = threading.Lock()


def _import_qiskit() -> None:
    """Worker-start hook: import qiskit from the worker's long-lived main thread.

    qiskit's extension crashes a process that first imported it from a thread that has
    since exited (see ``qrs.create_app``); a task thread may be such a thread.
    """
    from .. import _import_qiskit_in_this_thread

    _import_qiskit_in_this_thread()


def _worker_executor(config: Config) -> LocalExecutor:
    """This worker process's LocalExecutor for ``config`` (its caches live as long)."""
    with _worker_lock:
        executor = _worker_executors.get(config)
        if executor is None:
            from ..metadata import BackendMetadataProvider

            executor = LocalExecutor()
            executor.setup(config, BackendMetadataProvider())
            _worker_executors[config] = executor
        return executor


def run_pub(config: Config, program_id: str, pub: tuple, options: dict[str, Any],
            backend_name: str) -> tuple[str, Any]:
    """Dask task: one pub through the worker's LocalExecutor → (worker address, PubResult)."""
    from distributed import get_worker

    executor = _worker_executor(config)
    run = executor.execute_sampler if program_id == "sampler" else executor.execute_estimator
    return get_worker().address, run([pub], options, backend_name)[0]


class DaskExecutor(BaseExecutor):
    """Sends each pub of a job to the cluster as one task; gathers results in order."""

    def __init__(self) -> None:
        self.client: Any = None
        self.cluster: Any = None
        self.worker_config: Config | None = None

    @property
    def name(self) -> str:
        return "dask"

    def setup(self, config: Config, metadata: "BackendMetadataProvider") -> None:
        """Connect (or start a LocalCluster) now: an unreachable scheduler stops start-up."""
        super().setup(config, metadata)
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ExecutorUnavailable(
                f"QRS_EXECUTOR=dask needs Dask's distributed scheduler ({exc}). Fix: pip "
                "install '.[dask]' (dask[distributed]).") from exc
        address = config.dask_scheduler.strip()
        threads = config.aer_threads
        try:
            if address.lower() == "local":
                # Workers share this machine: split its cores between them.
                threads = threads or max(1, _cpu_count() // max(1, config.dask_workers))
                self.cluster = LocalCluster(n_workers=config.dask_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            silence_logs=logging.WARNING)
                address = self.cluster.scheduler_address
            self.client = Client(address, timeout=config.dask_connect_timeout, set_as_default=False)
            self.client.register_worker_callbacks(setup=_import_qiskit)
        except Exception as exc:
            self.close()
            raise ExecutorUnavailable(
                f"QRS_DASK_SCHEDULER={config.dask_scheduler!r}: cannot use the Dask scheduler "
                f"at {address}: {type(exc).__name__}: {exc}. Start one (dask scheduler; dask "
                "worker tcp://HOST:8786) or set QRS_DASK_SCHEDULER=local.") from exc
        self.worker_config = config.replace(aer_threads=threads)
        workers = self.client.scheduler_info().get("workers", {})
        log.info("Dask executor on %s: %d worker(s)%s", address, len(workers),
                 "" if workers else " — jobs wait until a worker joins")

    def _run(self, program_id: str, pubs: list[Any], options: dict[str, Any],
             backend_name: str) -> Any:
        from qiskit.primitives import PrimitiveResult

        futures = [self.client.submit(run_pub, self.worker_config, program_id, pub, options,
                                      backend_name, pure=False) for pub in pubs]
        joblog.emit(f"Submitted {len(futures)} pub(s) to the Dask cluster "
                    f"{self.client.scheduler.address}.")
        results = []
        try:
            for index, future in enumerate(futures):
                worker, result = self._wait(future)
                results.append(result)
                joblog.emit(f"Pub {index + 1}/{len(pubs)} done on Dask worker {worker}.")
        finally:
            unfinished = [future for future in futures if not future.done()]
            if unfinished:  # a refused, failed or cancelled job leaves nothing running
                self.client.cancel(unfinished)
        return PrimitiveResult(results, metadata={"version": 2})

    @staticmethod
    def _wait(future: Any) -> Any:
        """A task's result, checking between polls whether the job was given up on."""
        while True:
            joblog.checkpoint()
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                continue

    def execute_sampler(self, pubs: list[Any], options: dict[str, Any],
                        backend_name: str) -> Any:
        return self._run("sampler", pubs, options, backend_name)

    def execute_estimator(self, pubs: list[Any], options: dict[str, Any],
                          backend_name: str) -> Any:
        return self._run("estimator", pubs, options, backend_name)

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster this executor started."""
        for resource in (self.client, self.cluster):
            if resource is not None:
                try:
                    resource.close()
                except Exception:  # already gone: nothing left to release
                    log.debug("closing %r", resource, exc_info=True)
        self.client = self.cluster = None
