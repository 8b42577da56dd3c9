"""DaskExecutor: a job's tasks run on a Dask cluster — one heavy pub on many workers.

``QRS_DASK_SCHEDULER=tcp://host:8786`` connects to a running cluster; ``local`` starts a
``LocalCluster`` of ``QRS_DASK_WORKERS`` processes for development. Workers need the
same ``qrs``, ``qiskit``, ``qiskit-aer`` and ``qiskit-ibm-runtime`` as the server.

The server plans every pub as the ``LocalExecutor`` does (``planning.py``), with as many
task slots as the cluster has worker threads (twice over, for balance), so a heavy pub
becomes several tasks (``splitting.py``: shot chunks with derived seeds, binding ranges);
every task of the job is submitted at once, results are gathered in order and merged
into each pub's result. Tasks whose part runs on the GPU (statevector and density-matrix
parts, when some worker was started with ``--resources GPU=1``) are submitted with
``resources={"GPU": 1}``, so only those workers receive them, and run there through a
``GPUExecutor``.

Why tasks, not Aer's ``executor=`` / ``max_job_size`` options: in qiskit-aer 0.18
``AerBackend.run`` always submits to Aer's own thread pool (the ``executor`` option is
read nowhere on that path) and the ``max_job_size`` splitting (``AerJobSet``) is gone, so
those options no longer distribute anything. A task also runs the primitive's pre- and
post-processing (estimator basis rotations, bit packing) next to the simulator, ships
back a small ``PubResult``, and builds each backend's noise model once per worker
process (the ``LocalExecutor`` caches) rather than receiving it pickled every time.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .. import joblog
from ..config import Config, _cpu_count
from . import splitting
from .base import BaseExecutor, ExecutorUnavailable
from .local import LocalExecutor

if TYPE_CHECKING:
    from ..metadata import BackendMetadataProvider

log = logging.getLogger(__name__)

#: Seconds between checks for a cancelled job while waiting for a task.
POLL_SECONDS = 0.5

_worker_executors: dict[tuple[Config, str], LocalExecutor] = {}
_worker_lock = threading.Lock()


def _import_qiskit() -> None:
    """Worker-start hook: import qiskit from the worker's long-lived main thread.

    qiskit's extension crashes a process that first imported it from a thread that has
    since exited (see ``qrs.create_app``); a task thread may be such a thread.
    """
    from .. import _import_qiskit_in_this_thread

    _import_qiskit_in_this_thread()


def _worker_executor(config: Config, device: str) -> LocalExecutor:
    """This worker process's executor for ``config`` and ``device`` (caches live as long)."""
    with _worker_lock:
        executor = _worker_executors.get((config, device))
        if executor is None:
            from ..metadata import BackendMetadataProvider
            from .gpu import GPUExecutor

            executor = GPUExecutor() if device == "GPU" else LocalExecutor()
            executor.setup(config, BackendMetadataProvider())
            _worker_executors[(config, device)] = executor
        return executor


def run_task(
    config: Config, task: splitting.Task, backend_name: str, mapped: Any
) -> tuple[str, str, Any]:
    """Dask task: one task through the worker's executor → (worker, device, PubResult)."""
    from distributed import get_worker

    executor = _worker_executor(config, task.device)
    result = executor.run_task(task, backend_name, mapped)
    return get_worker().address, executor.device, result


def _warm_worker(config: Config, backend_name: str) -> None:
    """Build this worker's CPU executor and its simulator for ``backend_name`` now."""
    _worker_executor(config, "CPU").simulator(backend_name)


class DaskExecutor(LocalExecutor):
    """Plans on the server; sends every task of a job to the cluster; merges in order."""

    def __init__(self) -> None:
        super().__init__()
        self.client: Any = None
        self.cluster: Any = None
        self.worker_config: Config | None = None

    @property
    def name(self) -> str:
        return "dask"

    #: Small jobs are not combined into one call here: each runs as its own tasks.
    execute_sampler_batch = BaseExecutor.execute_sampler_batch

    def setup(self, config: Config, metadata: BackendMetadataProvider) -> None:
        """Connect (or start a LocalCluster) now: an unreachable scheduler stops start-up."""
        super().setup(config, metadata)
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ExecutorUnavailable(
                f"QRS_EXECUTOR=dask needs Dask's distributed scheduler ({exc}). Fix: pip "
                "install '.[dask]' (dask[distributed])."
            ) from exc
        address = config.dask_scheduler.strip()
        threads = config.aer_threads
        try:
            if address.lower() == "local":
                # Workers share this machine: split its cores between them.
                threads = threads or max(1, _cpu_count() // max(1, config.dask_workers))
                self.cluster = LocalCluster(
                    n_workers=config.dask_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.WARNING,
                )
                address = self.cluster.scheduler_address
            self.client = Client(
                address, timeout=config.dask_connect_timeout, set_as_default=False
            )
            self.client.register_worker_callbacks(setup=_import_qiskit)
        except Exception as exc:
            self.close()
            raise ExecutorUnavailable(
                f"QRS_DASK_SCHEDULER={config.dask_scheduler!r}: cannot use the Dask scheduler "
                f"at {address}: {type(exc).__name__}: {exc}. Start one (dask scheduler; dask "
                "worker tcp://HOST:8786) or set QRS_DASK_SCHEDULER=local."
            ) from exc
        self.worker_config = config.replace(aer_threads=threads)
        workers = self._workers()
        log.info(
            "Dask executor on %s: %d worker(s)%s",
            address,
            len(workers),
            "" if workers else " — jobs wait until a worker joins",
        )

    # ------------------------------------------------------------- the cluster
    def _workers(self) -> dict[str, Any]:
        return self.client.scheduler_info().get("workers", {}) if self.client else {}

    @property
    def slots(self) -> int:
        """Twice the cluster's worker threads: heavy pubs split so every worker stays busy."""
        threads = sum(int(w.get("nthreads", 1)) for w in self._workers().values())
        return max(1, 2 * threads)

    @property
    def device(self) -> str:  # type: ignore[override]
        """``GPU`` while some worker offers a ``GPU`` resource (``--resources GPU=1``)."""
        gpus = any(w.get("resources", {}).get("GPU") for w in self._workers().values())
        return "GPU" if gpus else "CPU"

    @property
    def memory_limit_mb(self) -> int:
        """A GPU worker's state limit: QRS_GPU_MEMORY_LIMIT, else the CPU's limit."""
        return self.config.gpu_memory_limit_mb or self.cpu_memory_limit_mb

    memory_setting = "QRS_GPU_MEMORY_LIMIT"

    def simulator_options(self, device: str | None = None) -> dict[str, Any]:
        return super().simulator_options("CPU")  # the server itself simulates nothing

    def warm(self, backend_name: str) -> None:
        """Have every worker build its noise model and simulator for a backend now (a
        worker's first task otherwise pays for them; benchmarks time warm workers)."""
        self.client.run(_warm_worker, self.worker_config, backend_name)

    # --------------------------------------------------------------- running
    def run_works(self, works: list[splitting.PubWork], mapped: Any, backend_name: str) -> Any:
        from qiskit.primitives import PrimitiveResult

        tasks = [task for work in works for task in work.tasks]
        futures = [
            self.client.submit(
                run_task,
                self.worker_config,
                task,
                backend_name,
                mapped,
                pure=False,
                resources={"GPU": 1} if task.device == "GPU" else None,
            )
            for task in tasks
        ]
        joblog.emit(
            f"Submitted {len(futures)} task(s) of {len(works)} pub(s) to the Dask "
            f"cluster {self.client.scheduler.address}."
        )
        outputs = []
        try:
            for task, future in zip(tasks, futures):
                worker, device, result = self._wait(future)
                outputs.append(result)
                joblog.emit(f"{task.label.capitalize()} done on Dask worker {worker} ({device}).")
        finally:
            unfinished = [future for future in futures if not future.done()]
            if unfinished:  # a failed or cancelled job leaves nothing running
                self.client.cancel(unfinished)
        results, start = [], 0
        for work in works:
            results.append(splitting.merge(work, outputs[start : start + len(work.tasks)]))
            start += len(work.tasks)
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

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster this executor started."""
        for resource in (self.client, self.cluster):
            if resource is not None:
                try:
                    resource.close()
                except Exception:  # already gone: nothing left to release
                    log.debug("closing %r", resource, exc_info=True)
        self.client = self.cluster = None
