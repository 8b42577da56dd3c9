"""The Executor interface: the replaceable part of QRS that runs circuits.

An executor receives decoded pubs, the client's options dict and a backend name, and
returns a qiskit ``PrimitiveResult``; ``execute_program`` runs the client's QuantumPrograms on
top of ``execute_sampler`` unless an executor overrides it. It may report progress with
``qrs.joblog.emit("...")``; those lines appear in the job's log. Executors are chosen by
name (``local``, ``gpu``, ``hybrid``, ``dask``) or by a dotted path ``package.module:Class``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit.primitives import PrimitiveResult
    from samplomatic.quantum_program import QuantumProgram, QuantumProgramResult

    from ..config import Config
    from ..metadata import BackendMetadataProvider


class ExecutorUnavailable(RuntimeError):
    """The executor cannot run on this machine; the message says what is missing."""


class JobRefused(ValueError):
    """A job this executor will not run (too large, impossible); the message says why."""


class BaseExecutor(ABC):
    """Abstract executor. Subclasses implement the two primitives and ``name``."""

    config: Config
    metadata: BackendMetadataProvider

    def setup(self, config: Config, metadata: BackendMetadataProvider) -> None:
        """Receive the server's config and metadata provider.

        Called once in each job process (``qrs.workhorse``) before its first job — never
        in a process that serves HTTP — so CUDA, clusters and caches live there only.
        Override to check the machine (and raise ``ExecutorUnavailable`` with a clear
        message): the server's first job process is started at start-up, so such a
        refusal stops the server before it serves.
        """
        self.config = config
        self.metadata = metadata

    def __getstate__(self) -> dict[str, Any]:
        """What a job process receives: the configured executor, before ``setup()``."""
        state = dict(self.__dict__)
        state.pop("config", None)
        state.pop("metadata", None)
        return state

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name shown in logs, metrics and job metadata."""

    @abstractmethod
    def execute_sampler(
        self, pubs: list[Any], options: dict[str, Any], backend_name: str
    ) -> PrimitiveResult:
        """Run Sampler pubs ``(circuit, parameter values, shots)`` on ``backend_name``."""

    @abstractmethod
    def execute_estimator(
        self, pubs: list[Any], options: dict[str, Any], backend_name: str
    ) -> PrimitiveResult:
        """Run Estimator pubs ``(circuit, observables, parameter values, precision)``."""

    def execute_sampler_batch(
        self, jobs: list[tuple[list[Any], dict[str, Any]]], backend_name: str
    ) -> list[Any]:
        """Run several small Sampler jobs; one ``PrimitiveResult`` or exception per job.

        The runner hands over jobs for the same backend together so an executor can share
        work between them (one simulator call for all their circuits). This default runs
        them one by one; a failure stays with its own job.
        """
        results: list[Any] = []
        for pubs, options in jobs:
            try:
                results.append(self.execute_sampler(pubs, options, backend_name))
            except Exception as exc:  # reported per job by the runner
                results.append(exc)
        return results

    def execute_program(
        self, program: QuantumProgram, options: dict[str, Any], backend_name: str
    ) -> QuantumProgramResult:
        """Run an ``executor`` QuantumProgram (the client's new Sampler/Estimator/Executor).

        The default draws the samplex randomizations and runs one Sampler pub per item
        through ``execute_sampler``, so every executor runs programs; override to batch
        items differently. ``options`` are the program's execution options (``init_qubits``,
        ``rep_delay``, ...); the runner has already logged those a simulator cannot honour.
        Their ``simulator.seed_simulator`` seeds the run (see ``run_on_sampler``).
        """
        from .programs import run_on_sampler

        return run_on_sampler(self.execute_sampler, program, backend_name, options)

    def close(self) -> None:
        """Release resources (clusters, GPU memory) at shutdown."""


#: Built-in executors by alias; values are ``module:Class`` paths imported on demand so
#: the server starts without CUDA or Dask installed.
ALIASES = {
    "local": "qrs.executors.local:LocalExecutor",
    "cpu": "qrs.executors.local:LocalExecutor",
    "gpu": "qrs.executors.gpu:GPUExecutor",
    "hybrid": "qrs.executors.hybrid:HybridExecutor",
    "dask": "qrs.executors.dask:DaskExecutor",
}


def resolve(spec: str) -> BaseExecutor:
    """Build an executor from an alias or ``package.module:ClassName``."""
    path = ALIASES.get(spec.strip().lower(), spec.strip())
    module_name, _, class_name = path.partition(":")
    if not class_name:
        raise ExecutorUnavailable(
            f"QRS_EXECUTOR={spec!r} is neither one of {sorted(ALIASES)} nor a "
            "'package.module:ClassName' path."
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ExecutorUnavailable(f"QRS_EXECUTOR={spec!r}: cannot load {path}: {exc}") from exc
    if not callable(cls):
        raise ExecutorUnavailable(f"QRS_EXECUTOR={spec!r}: {path} is not a class.")
    try:
        instance = cls()
    except Exception as exc:
        raise ExecutorUnavailable(
            f"QRS_EXECUTOR={spec!r}: {path}() failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(instance, BaseExecutor):
        missing = [
            m
            for m in ("execute_sampler", "execute_estimator", "name", "setup", "close")
            if not hasattr(instance, m)
        ]
        if missing:
            raise ExecutorUnavailable(
                f"QRS_EXECUTOR={spec!r}: {path} does not implement the executor interface "
                f"(missing {', '.join(missing)}); subclass qrs.executors.base.BaseExecutor."
            )
    return instance
