"""LocalExecutor: CPU Aer, the default.

Runs pubs the way ``QiskitRuntimeLocalService`` does — ``BackendSamplerV2`` /
``BackendEstimatorV2`` over an ``AerSimulator`` built from the fake backend, with the
noise model from its calibration properties — so its answers are the statistical
reference's. Differences:

* every pub gets a simulation plan before anything runs (``planning.py``: parts apart, a
  method each, memory and time estimated; refused only when no plan fits);
* a plan becomes tasks (``splitting.py``), run here one after another with all of this
  executor's Aer threads (docs/executors.md: why not a process pool), merged in order;
* noise models (slow to build for 100+ qubit devices) and simulators are cached per
  backend and calibration in module-level caches shared by every job and executor of the
  process; each run gets the model cut down to its qubits (``noise.py``);
* small Sampler jobs handed over together run in one Aer call (``execute_sampler_batch``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import compat, joblog
from ..codec import coerce_pubs
from ..config import machine_memory_mb
from ..spans import data_span, execution_metadata, is_sampler_pub_result, utc_now
from . import batch, iq, mitigation, splitting
from .base import BaseExecutor, ExecutorUnavailable, JobRefused
from .components import probe_bond
from .device_noise import readout_errors
from .estimates import PlanSettings
from .noise import LRUCache, readout_flip, stabilizer_compatible
from .observables import observed_qubits
from .options import MappedOptions
from .planning import PROBE_BOND, NoiseFacts, PubPlan, plan_pub
from .programs import twirls_gates
from .simulators import SimulatorCache

#: Whether a noise model's errors on a set of qubits can run on the stabilizer method.
_STABILIZER_NOISE = LRUCache(1024)

APPROXIMATIONS = ("none", "pauli", "twirled")
#: Set while an executor program whose samplex twirls gates runs (``execute_program``).
_TWIRLED = contextvars.ContextVar("qrs_twirled_program", default=False)


class LocalExecutor(SimulatorCache, BaseExecutor):
    """Aer on this machine's CPU cores."""

    device = "CPU"
    #: The setting that bounds this executor's state memory (named in refusals).
    memory_setting = "QRS_MAX_MEMORY_MB"

    def __init__(
        self, method: str | None = None, noise: bool | None = None, threads: int | None = None
    ) -> None:
        self._method = method
        self._noise = noise
        self._threads = threads

    @property
    def name(self) -> str:
        return "local"

    def setup(self, config: Any, metadata: Any) -> None:
        super().setup(config, metadata)
        if config.noise_approximation.strip().lower() not in APPROXIMATIONS:
            raise ExecutorUnavailable(
                f"QRS_NOISE_APPROXIMATION={config.noise_approximation!r}: use one of "
                f"{', '.join(APPROXIMATIONS)}."
            )

    # ----------------------------------------------------------- configuration
    @property
    def method(self) -> str:
        return self._method or self.config.simulation_method

    @property
    def noise(self) -> bool:
        return self.config.noise if self._noise is None else self._noise

    @property
    def threads(self) -> int:
        """Aer threads per job, so that workers × runner threads × Aer threads ≈ cores."""
        if self._threads or self.config.aer_threads:
            return self._threads or self.config.aer_threads
        from ..config import _cpu_count

        per_job = _cpu_count() // max(1, self.config.workers * self.config.executor_threads)
        return max(1, per_job)

    @property
    def cpu_memory_limit_mb(self) -> int:
        return self.config.max_memory_mb or int(machine_memory_mb() * 0.8)

    @property
    def memory_limit_mb(self) -> int:
        return self.cpu_memory_limit_mb

    @property
    def slots(self) -> int:
        """Tasks this executor runs at once: one here (each with every Aer thread)."""
        return 1

    def simulator_options(self, device: str | None = None) -> dict[str, Any]:
        """Options every simulator of this executor gets (the GPU executor adds its own)."""
        options: dict[str, Any] = {
            "method": self.method,
            "device": device or self.device,
            "max_parallel_threads": self.threads,
            "fusion_enable": self.config.fusion_enable,
        }
        if self.config.fusion_threshold:
            options["fusion_threshold"] = self.config.fusion_threshold
        return options

    def method_options(self, method: str) -> dict[str, Any]:
        """Aer options a task of ``method`` runs with (MPS truncation).

        Not Aer's shot branching: on Aer 0.18.2 its noisy trajectories are not exact (a noisy
        12-qubit GHZ on fake_kolkata: P(0…0) 0.47 with it, 0.43 without and with the density
        matrix, 4,000 shots each) nor reproducible from ``seed_simulator``.
        """
        if method == "matrix_product_state":
            options = {
                "matrix_product_state_truncation_threshold": self.config.mps_truncation_threshold
            }
            if self.config.mps_max_bond_dimension:
                options["matrix_product_state_max_bond_dimension"] = (
                    self.config.mps_max_bond_dimension
                )
            return options
        return {}

    def plan_settings(self) -> PlanSettings:
        """What the planner may use on this executor."""
        forced = "" if self.method == "automatic" else self.method
        return PlanSettings(
            memory_limit_mb=self.cpu_memory_limit_mb,
            memory_setting=LocalExecutor.memory_setting,
            threads=self.threads,
            forced_method=forced,
            gpu_memory_mb=self.memory_limit_mb if self.device == "GPU" else 0,
            gpu_setting=self.memory_setting,
            mps_max_bond=self.config.mps_max_bond_dimension,
            approximation=self.config.noise_approximation.strip().lower(),
            split_tasks=self.config.split_tasks,
            slots=self.slots,
            split_min_seconds=self.config.split_min_seconds,
        )

    # ---------------------------------------------------------------- planning
    def noise_facts(self, model: Any, twirled: bool) -> NoiseFacts:
        if model is None:
            return NoiseFacts(noisy=False, twirled=twirled)

        def stabilizer_ok(qubits: tuple[int, ...]) -> bool:
            return _STABILIZER_NOISE.get(
                (id(model), qubits), lambda: stabilizer_compatible(model, qubits)
            )

        return NoiseFacts(
            noisy=True,
            stabilizer_ok=stabilizer_ok,
            twirled=twirled,
            delay_noise=bool(compat.noise_passes(model)),
        )

    def plan(
        self,
        kind: str,
        index: int,
        pub: Any,
        facts: NoiseFacts,
        say: Callable[[str], None] = joblog.emit,
    ) -> PubPlan:
        """A pub's plan, logged (``say``); refusals name the pub."""
        observed = observed_qubits(pub.observables) if kind == "estimator" else None
        try:
            plan = plan_pub(
                kind,
                pub,
                facts,
                self.plan_settings(),
                observed,
                probe=lambda part, order: probe_bond(pub, part, order, PROBE_BOND, self.threads),
            )
        except JobRefused as exc:
            raise JobRefused(f"Pub {index + 1}: {exc}") from None
        say(f"Pub {index + 1} plan: {plan.describe()}")
        return plan

    def prepare(
        self,
        kind: str,
        pubs: list[Any],
        mapped: MappedOptions,
        backend_name: str,
        say: Callable[[str], None] = joblog.emit,
    ) -> list[splitting.PubWork]:
        """Plan every pub (refusing before any work), then cut each into tasks."""
        twirled = _TWIRLED.get()
        model = self.job_noise_model(backend_name, mapped.run)
        facts = self.noise_facts(model, twirled)
        plans = [self.plan(kind, index, pub, facts, say) for index, pub in enumerate(pubs)]
        seed = mapped.primitive.get("seed_simulator")
        readout = mapped.meas_type == "classified"
        works = []
        for index, (pub, plan) in enumerate(zip(pubs, plans)):
            work = splitting.prepare(kind, index, pub, plan, seed)
            work.flips = {
                q: readout_flip(model, q) if readout else 0.0
                for part in plan.passive
                for q in part.qubits
            }
            works.append(work)
        return works

    # -------------------------------------------------------------- primitives
    def run_task(self, task: splitting.Task, backend_name: str, mapped: MappedOptions) -> Any:
        """Run one task through the reference primitive; its ``PubResult``."""
        from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2

        sim = self.task_simulator(backend_name, task, mapped)
        primitive = BackendSamplerV2 if task.kind == "sampler" else BackendEstimatorV2
        return (
            primitive(backend=sim, options={"seed_simulator": task.seed})
            .run([task.pub])
            .result()[0]
        )

    @staticmethod
    def coerce(kind: str, pubs: list[Any], mapped: MappedOptions) -> list[Any]:
        """Decoded pubs as ``SamplerPub`` / ``EstimatorPub`` with the job's defaults."""
        default = (
            mapped.primitive.get("default_shots", 1024)
            if kind == "sampler"
            else mapped.primitive.get("default_precision", 0.015625)
        )
        return coerce_pubs(kind, pubs, default)

    def execute_sampler(self, pubs: list[Any], options: dict[str, Any], backend_name: str) -> Any:
        """Twirling and DD through the client's engine (``mitigation``), else planned Aer."""
        return mitigation.execute_sampler(self, pubs, options, backend_name, self._sample)

    def _sample(self, pubs: list[Any], mapped: MappedOptions, backend_name: str) -> Any:
        """The direct path: Sampler pubs, planned, on ``BackendSamplerV2``."""
        works = self.prepare("sampler", self.coerce("sampler", pubs, mapped), mapped, backend_name)
        return self.measured_as(
            mapped, works, self.run_works(works, mapped, backend_name), backend_name
        )

    def execute_estimator(
        self, pubs: list[Any], options: dict[str, Any], backend_name: str
    ) -> Any:
        """IBM's resilience levels and options through the client's engine (``mitigation``);
        planned Aer when a job asks for no suppression or mitigation."""
        return mitigation.execute_estimator(self, pubs, options, backend_name, self._estimate)

    def _estimate(self, pubs: list[Any], mapped: MappedOptions, backend_name: str) -> Any:
        """The direct path: Estimator pubs, planned, on ``BackendEstimatorV2``."""
        works = self.prepare(
            "estimator", self.coerce("estimator", pubs, mapped), mapped, backend_name
        )
        return self.run_works(works, mapped, backend_name)

    def execute_program(self, program: Any, options: dict[str, Any], backend_name: str) -> Any:
        """The default program route, telling the planner whether the samplex twirls."""
        token = _TWIRLED.set(twirls_gates(program))
        try:
            return super().execute_program(program, options, backend_name)
        finally:
            _TWIRLED.reset(token)

    def execute_sampler_batch(
        self, jobs: list[tuple[list[Any], dict[str, Any]]], backend_name: str
    ) -> list[Any]:
        """Small jobs with equal options and plans in one Aer call (``batch.py``)."""
        return batch.execute_sampler_batch(self, jobs, backend_name)

    def measured_as(
        self, mapped: MappedOptions, works: list[splitting.PubWork], result: Any, backend_name: str
    ) -> Any:
        """``result`` with each register as ``mapped.meas_type`` asks (IQ: see ``iq.py``)."""
        from qiskit.primitives import PrimitiveResult

        if mapped.meas_type == "classified":
            return result
        readout = readout_errors(self.metadata.get_backend(backend_name)) if self.noise else {}
        rng = np.random.default_rng(mapped.primitive.get("seed_simulator"))
        joblog.emit(
            f"meas_type={mapped.meas_type}: IQ points emulated from the calibrated "
            "readout errors (docs/noise.md)."
        )
        return PrimitiveResult(
            [
                iq.convert_pub_result(pub_result, work.pub.circuit, mapped.meas_type, readout, rng)
                for work, pub_result in zip(works, result)
            ],
            metadata=result.metadata,
        )

    def run_works(
        self, works: list[splitting.PubWork], mapped: MappedOptions, backend_name: str
    ) -> Any:
        """Run pubs one at a time, logging progress; one ``PrimitiveResult`` for all."""
        from qiskit.primitives import PrimitiveResult

        results, spans = [], []
        for index, work in enumerate(works):
            outputs, start = [], utc_now()
            for task in work.tasks:
                joblog.checkpoint()
                outputs.append(self.run_task(task, backend_name, mapped))
            results.append(splitting.merge(work, outputs))
            if is_sampler_pub_result(results[-1]):  # when this pub's shots were taken
                spans.append(data_span(start, utc_now(), {index: results[-1]}))
            joblog.emit(
                f"Pub {index + 1}/{len(works)} done ({work.pub.circuit.num_qubits} "
                f"qubits, shape {work.pub.shape}, {work.plan.method}"
                + (f", {len(work.tasks)} tasks" if len(work.tasks) > 1 else "")
                + ")."
            )
        return PrimitiveResult(results, metadata={"version": 2, **execution_metadata(spans)})
