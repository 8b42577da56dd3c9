"""The pure execution step: job params text in, a typed outcome per job out.

This is what a job process (``qrs.workhorse``) runs for each task the runner hands it:
decode the params, call the executor, encode the result. It never touches the store,
HTTP or the process that supervises it; whatever happens in here (an exception, a
segmentation fault, an out-of-memory kill) happens in the job's own process.

A task is one job, or several small Sampler jobs batched by ``qrs.batching``'s rule,
which run in one executor call (``execute_sampler_batch``) and still get an outcome each.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import joblog
from .codec import decode_params, encode_result
from .errors import QRSError
from .executors.base import BaseExecutor, JobRefused
from .noise_learning import NOISE_LEARNER_PROGRAM
from .quantum_program import EXECUTOR_PROGRAM
from .spans import utc_now
from .states import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobTask:
    """One job as a job process needs it: no row, no store, just what to run."""

    job_id: str
    program_id: str
    backend: str
    params_text: str


@dataclass(frozen=True)
class Completed:
    """The job ran; ``result_text`` is what ``GET /jobs/<id>/results`` serves."""

    job_id: str
    result_text: str


@dataclass(frozen=True)
class Failed:
    """The job could not run or its executor raised; ``message`` is what the user sees."""

    job_id: str
    message: str
    reason_code: int = int(ReasonCode.EXECUTION_FAILED)
    #: The job process should be replaced after this (an allocation failed in it).
    recycle: bool = False


JobOutcome = Completed | Failed


def run_tasks(executor: BaseExecutor, tasks: Sequence[JobTask]) -> list[JobOutcome]:
    """Run one task (a job, or a batch of small Sampler jobs); one outcome per job."""
    if len(tasks) == 1 and tasks[0].program_id == EXECUTOR_PROGRAM:
        return [_run_program(executor, tasks[0])]
    if len(tasks) == 1 and tasks[0].program_id == NOISE_LEARNER_PROGRAM:
        return [_run_learning(executor, tasks[0])]
    decoded: dict[str, Any] = {}
    outcomes: dict[str, JobOutcome] = {}
    for task in tasks:
        try:
            decoded[task.job_id] = decode_params(task.params_text, task.program_id)
        except Exception as exc:
            outcomes[task.job_id] = _failure(task, exc)
    runnable = [task for task in tasks if task.job_id in decoded]
    if runnable:
        pubs = sum(len(decoded[task.job_id].pubs) for task in runnable)
        joblog.emit(
            f"Executing {pubs} pub(s) on {tasks[0].backend} with the {executor.name} "
            "executor"
            + (f", batched with {len(runnable) - 1} other job(s)." if len(runnable) > 1 else ".")
        )
        started = utc_now()
        if len(runnable) > 1:
            results = executor.execute_sampler_batch(
                [(decoded[task.job_id].pubs, decoded[task.job_id].options) for task in runnable],
                tasks[0].backend,
            )
        else:
            results = [_call(executor, runnable[0], decoded[runnable[0].job_id])]
        window = (started, utc_now())  # dates results that carry no spans of their own
        for task, result in zip(runnable, results):
            outcomes[task.job_id] = _encode(task, result, window)
    return [outcomes[task.job_id] for task in tasks]


def _call(executor: BaseExecutor, task: JobTask, params: Any) -> Any:
    """One job's pubs through its primitive; an exception is returned, like batch results."""
    run = {"sampler": executor.execute_sampler, "estimator": executor.execute_estimator}.get(
        task.program_id
    )
    try:
        if run is None:
            raise JobRefused(f"Program '{task.program_id}' is not supported.")
        return run(params.pubs, params.options, task.backend)
    except Exception as exc:
        return exc


def _run_program(executor: BaseExecutor, task: JobTask) -> JobOutcome:
    """One ``executor`` job: a QuantumProgram, never batched (or a dry run on a mock)."""
    from .executors.programs import random_result
    from .metadata import MOCK_PREFIX
    from .quantum_program import decode_program, log_options
    from .quantum_program import encode_result as encode_program

    try:
        decoded = decode_program(task.params_text)
        program = decoded.program
        elements = sum(math.prod(item.shape) for item in program.items)
        if task.backend.startswith(MOCK_PREFIX):
            joblog.emit(
                f"Dry run on {task.backend}: {len(program.items)} item(s), {elements} "
                f"element(s) x {program.shots} shots of random bits; nothing simulated."
            )
            return Completed(task.job_id, encode_program(random_result(program), decoded))
        joblog.emit(
            f"Executing a quantum program of {len(program.items)} item(s), {elements} "
            f"element(s) x {program.shots} shots on {task.backend} with the "
            f"{executor.name} executor."
        )
        log_options(decoded, executor.name)
        result = execute_program(executor, program, decoded.options, task.backend)
        return Completed(task.job_id, encode_program(result, decoded))
    except Exception as exc:
        return _failure(task, exc)


def _run_learning(executor: BaseExecutor, task: JobTask) -> JobOutcome:
    """One ``noise-learner`` job (``qrs.noise_learning``), never batched."""
    from .noise_learning import run_job as run_learning

    try:
        return Completed(task.job_id, run_learning(executor, task.params_text, task.backend))
    except Exception as exc:
        return _failure(task, exc)


def execute_program(
    executor: Any, program: Any, options: dict[str, Any], backend_name: str
) -> Any:
    """``executor.execute_program``; plug-ins that only duck-type the interface (no
    ``BaseExecutor``, no ``execute_program``) get its default, the Sampler route."""
    if getattr(executor, "execute_program", None) is None:
        return BaseExecutor.execute_program(executor, program, options, backend_name)
    return executor.execute_program(program, options, backend_name)


def _encode(
    task: JobTask, result: Any, window: tuple[datetime, datetime] | None = None
) -> JobOutcome:
    """A primitive's result (or the exception it raised) as the job's outcome."""
    if isinstance(result, BaseException):
        return _failure(task, result)
    try:
        return Completed(task.job_id, encode_result(result, window))
    except Exception as exc:
        log.exception("job %s: result could not be encoded", task.job_id)
        return Failed(task.job_id, f"The result could not be encoded: {message_of(exc)}")


def _failure(task: JobTask, exc: BaseException) -> Failed:
    """A failed job's outcome; unexpected exception types are logged with their trace."""
    if isinstance(exc, MemoryError):
        return Failed(
            task.job_id,
            "The job ran out of memory: an allocation failed in its "
            "process (QRS_JOB_MEMORY_MB bounds it). Use fewer qubits, shots or "
            "parameter sets per pub.",
            int(ReasonCode.MEMORY_LIMIT),
            recycle=True,
        )
    if not isinstance(exc, (JobRefused, QRSError, ValueError, TypeError)):
        log.error("job %s failed: %r", task.job_id, exc, exc_info=exc)
    return Failed(task.job_id, message_of(exc))


def message_of(exc: BaseException) -> str:
    """The text a user sees for a failure: a typed error's message, else type and text."""
    if isinstance(exc, (JobRefused, QRSError)):
        return str(getattr(exc, "message", exc))
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
