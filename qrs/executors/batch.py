"""Small Sampler jobs handed over together, run in one Aer call per method.

Aer converts the noise model once per call instead of once per job. A job joins the shared
call when it takes the direct path (no twirling or DD, no warnings: ``legacy_options``)
and every pub of it planned to one whole-circuit task (``splitting``); jobs with the same
options and method run together, others alone. A job that cannot be prepared fails alone;
if a shared call fails, each of its jobs runs alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import joblog
from ..spans import data_span, execution_metadata, utc_now
from . import splitting
from .legacy_options import sampler_plan
from .options import sampler_options

if TYPE_CHECKING:
    from .local import LocalExecutor

Member = tuple[int, Any, list[splitting.PubWork]]


def execute_sampler_batch(
    executor: LocalExecutor, jobs: list[tuple[list[Any], dict]], backend_name: str
) -> list[Any]:
    """One ``PrimitiveResult`` or exception per job, in order."""
    results: list[Any] = [None] * len(jobs)
    groups: dict[str, list[Member]] = {}
    said: set[str] = set()  # the batch shares one log: each line once, not once per job

    def say(line: str) -> None:
        if line not in said:
            said.add(line)
            joblog.emit(line)

    for index, (pubs, options) in enumerate(jobs):
        try:
            plan = sampler_plan(options)
            if not plan.direct or plan.warnings:  # twirled, DD or warned: on its own
                results[index] = executor.execute_sampler(pubs, options, backend_name)
                continue
            mapped = sampler_options(plan.rest)
            if mapped.ignored:
                say(f"Options with no effect on the simulator: {mapped.ignored}")
            works = executor.prepare(
                "sampler", executor.coerce("sampler", pubs, mapped), mapped, backend_name, say
            )
        except Exception as exc:  # this job alone fails
            results[index] = exc
            continue
        simple = {(w.tasks[0].method, w.tasks[0].noise) for w in works}
        if len(simple) != 1 or any(len(w.tasks) != 1 or w.tasks[0].remapped for w in works):
            results[index] = attempt(executor, works, mapped, backend_name)
            continue
        key = json.dumps([options, *simple], sort_keys=True, default=str)
        groups.setdefault(key, []).append((index, mapped, works))
    for members in groups.values():
        try:
            _run_together(executor, members, backend_name, results)
        except Exception:  # find the culprit: every job on its own
            for index, mapped, works in members:
                results[index] = attempt(executor, works, mapped, backend_name)
    return results


def _run_together(
    executor: LocalExecutor, members: list[Member], backend_name: str, results: list[Any]
) -> None:
    from qiskit.primitives import BackendSamplerV2, PrimitiveResult

    tasks = [work.tasks[0] for _, _, works in members for work in works]
    qubits = tuple(sorted({q for task in tasks for q in task.qubits}))
    mapped = members[0][1]
    seed = mapped.primitive.get("seed_simulator")
    union = splitting.Task(
        "sampler", None, tasks[0].method, tasks[0].device, tasks[0].noise, qubits, False, seed
    )
    sim = executor.task_simulator(backend_name, union, mapped)
    sampler = BackendSamplerV2(backend=sim, options={"seed_simulator": seed})
    started = utc_now()
    combined = sampler.run([task.pub for task in tasks]).result()
    start, stopped = 0, utc_now()
    for index, job_mapped, works in members:
        pieces = [splitting.merge(work, [combined[start + i]]) for i, work in enumerate(works)]
        span = data_span(started, stopped, dict(enumerate(pieces)))  # the shared call
        results[index] = executor.measured_as(
            job_mapped,
            works,
            PrimitiveResult(pieces, metadata={"version": 2, **execution_metadata([span])}),
            backend_name,
        )
        start += len(works)


def attempt(
    executor: LocalExecutor, works: list[splitting.PubWork], mapped: Any, backend_name: str
) -> Any:
    """``executor.run_works``, with a failure returned rather than raised (batch results)."""
    try:
        return executor.measured_as(
            mapped, works, executor.run_works(works, mapped, backend_name), backend_name
        )
    except joblog.JobAborted:
        raise
    except Exception as exc:
        return exc
