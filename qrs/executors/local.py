"""LocalExecutor: CPU Aer, the default.

Runs pubs the way ``QiskitRuntimeLocalService`` does — ``BackendSamplerV2`` /
``BackendEstimatorV2`` over an ``AerSimulator`` built from the fake backend, with the
noise model from its calibration properties — so its answers are the statistical
reference's. Differences: noise models (slow to build for 100+ qubit devices) and
simulators are cached per backend and calibration in module-level caches shared by every
job and every executor of the process (the hybrid executor's CPU side and a GPU executor
share one noise model); the memory a job needs is checked before it runs; pubs run one at
a time so the job log shows progress and a cancelled job stops between pubs.

Two things keep small jobs cheap: each run gets the noise model cut down to the qubits
the job uses (``noise.py``), which Aer converts in a fraction of the time of the whole
device's model, and small Sampler jobs handed over together run in one Aer call
(``execute_sampler_batch``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from .. import joblog
from ..circuits import active_qubits, circuit_width, pub_circuit, pub_qubits  # noqa: F401
from ..codec import coerce_pubs
from ..compat import simulator_with_options
from ..config import machine_memory_mb
from ..spans import data_span, execution_metadata, is_sampler_pub_result, utc_now
from . import iq, mitigation
from .base import BaseExecutor, JobRefused
from .device_noise import device_noise_model, readout_errors
from .legacy_options import sampler_plan
from .noise import LRUCache, restrict_noise_model, with_noise_model
from .options import MappedOptions, sampler_options

#: Bytes per amplitude (complex128) and the state size each method needs for n qubits.
_STATE_BYTES = {
    "statevector": lambda n: 16 * 2**n,
    "density_matrix": lambda n: 16 * 4**n,
    "automatic": lambda n: 16 * 2**n,
    "unitary": lambda n: 16 * 4**n,
    "superop": lambda n: 16 * 16**n,
}


#: The widest pub's active qubits sizes a job (``circuits.circuit_width``; this name stays
#: importable from here, as ``active_qubits`` and ``pub_circuit`` do).
widest = circuit_width

#: Process-wide caches: noise model per (backend, calibration date), simulator per
#: (backend, calibration date, noise on/off, simulator options).
_NOISE_MODELS: dict[tuple[str, str], Any] = {}
_SIMULATORS: dict[tuple, Any] = {}
_CACHE_LOCK = threading.RLock()
#: Simulator views with noise cut down to a set of qubits, per (simulator, qubits).
_VIEWS = LRUCache(256)


def required_memory_mb(method: str, num_qubits: int) -> float:
    """Estimated state memory of ``method`` on ``num_qubits`` (0 for stabilizer/MPS)."""
    size = _STATE_BYTES.get(method)
    return size(num_qubits) / 2**20 if size else 0.0


class LocalExecutor(BaseExecutor):
    """Aer on this machine's CPU cores."""

    device = "CPU"
    #: The setting that bounds this executor's state memory (named in refusals).
    memory_setting = "QRS_MAX_MEMORY_MB"

    def __init__(self, method: str | None = None, noise: bool | None = None,
                 threads: int | None = None) -> None:
        self._method = method
        self._noise = noise
        self._threads = threads

    @property
    def name(self) -> str:
        return "local"

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
    def memory_limit_mb(self) -> int:
        return self.config.max_memory_mb or int(machine_memory_mb() * 0.8)

    def simulator_options(self) -> dict[str, Any]:
        """Options every simulator of this executor gets (the GPU executor adds its own)."""
        options: dict[str, Any] = {"method": self.method, "device": self.device,
                                   "max_parallel_threads": self.threads,
                                   "fusion_enable": self.config.fusion_enable}
        if self.config.fusion_threshold:
            options["fusion_threshold"] = self.config.fusion_threshold
        return options

    # --------------------------------------------------------------- simulator
    def calibration(self, backend_name: str) -> str:
        """The calibration a backend's noise model is built from (its properties' date)."""
        try:
            return str(self.metadata.get_properties(backend_name).get("last_update_date", ""))
        except Exception:  # a backend without properties has no calibration to key on
            return ""

    def noise_model(self, backend_name: str, calibration: str) -> Any:
        """The backend's noise model (``None`` if ideal), built once per calibration.

        Asymmetric readout errors and relaxation on delays, see ``device_noise.py``.
        """
        key = (backend_name, calibration)
        with _CACHE_LOCK:
            if key not in _NOISE_MODELS:
                _NOISE_MODELS[key] = device_noise_model(self.metadata.get_backend(backend_name))
            return _NOISE_MODELS[key]

    def simulator(self, backend_name: str) -> Any:
        """The cached ``AerSimulator`` for a backend, shared by every job of the process."""
        options = self.simulator_options()
        calibration = self.calibration(backend_name)
        key = (backend_name, calibration, self.noise,
               tuple(sorted((name, repr(value)) for name, value in options.items())))
        with _CACHE_LOCK:
            sim = _SIMULATORS.get(key)
            if sim is None:
                from qiskit_aer import AerSimulator

                noise = self.noise_model(backend_name, calibration) if self.noise else None
                sim = AerSimulator.from_backend(self.metadata.get_backend(backend_name),
                                                noise_model=noise, **options)
                _SIMULATORS[key] = sim
                joblog.emit(f"Built {'noisy' if self.noise else 'ideal'} {self.device} "
                            f"simulator for {backend_name} (calibration {calibration or 'n/a'}).")
            return sim

    def simulator_for(self, backend_name: str, pubs: list[Any], readout: bool = True) -> Any:
        """The backend's simulator with its noise model cut down to the pubs' qubits
        (and without readout errors for ``readout=False``)."""
        sim = self.simulator(backend_name)
        noise_model = sim.options.noise_model
        if noise_model is None:
            return sim
        qubits = frozenset().union(*(pub_qubits(pub) for pub in pubs))
        return _VIEWS.get((id(sim), qubits, readout), lambda: with_noise_model(
            sim, restrict_noise_model(noise_model, qubits, readout)))

    def check_memory(self, pubs: list[Any]) -> None:
        """Refuse a job whose state would not fit in this executor's memory limit."""
        width = circuit_width(pubs)
        needed = required_memory_mb(self.method, width)
        if needed > self.memory_limit_mb:
            raise JobRefused(
                f"A {width}-qubit circuit needs about {needed:,.0f} MiB with the "
                f"'{self.method}' method on the {self.device}, above this server's limit of "
                f"{self.memory_limit_mb:,} MiB ({self.memory_setting}). Use fewer qubits or a "
                "method such as matrix_product_state or stabilizer.")

    # -------------------------------------------------------------- primitives
    def _sampler_pubs(self, mapped: MappedOptions, pubs: list[Any]) -> list[Any]:
        """Coerce a Sampler job's pubs for its mapped options; refuses what cannot fit."""
        coerced = coerce_pubs("sampler", pubs, mapped.primitive.get("default_shots", 1024))
        self.check_memory(coerced)
        return coerced

    def _sampler(self, mapped: Any, pubs: list[Any], backend_name: str) -> Any:
        """A ``BackendSamplerV2`` on the backend's simulator, noise cut down to ``pubs``."""
        from qiskit.primitives import BackendSamplerV2

        readout = mapped.meas_type == "classified"  # IQ emulation makes its own misreads
        return BackendSamplerV2(backend=self.simulator_for(backend_name, pubs, readout),
                                options={**mapped.primitive, "run_options": mapped.run})

    def execute_sampler(self, pubs: list[Any], options: dict[str, Any],
                        backend_name: str) -> Any:
        """Twirling and DD through the client's engine (``mitigation``), else plain Aer."""
        return mitigation.execute_sampler(self, pubs, options, backend_name, self._sample)

    def _sample(self, pubs: list[Any], mapped: MappedOptions, backend_name: str) -> Any:
        """The direct path: Sampler pubs on ``BackendSamplerV2``."""
        coerced = self._sampler_pubs(mapped, pubs)
        result = self._run_pubs(self._sampler(mapped, coerced, backend_name), coerced)
        return self._measured_as(mapped, coerced, result, backend_name)

    def _measured_as(self, mapped: Any, pubs: list[Any], result: Any, backend_name: str) -> Any:
        """``result`` with each register as ``mapped.meas_type`` asks (IQ: see ``iq.py``)."""
        from qiskit.primitives import PrimitiveResult

        if mapped.meas_type == "classified":
            return result
        readout = readout_errors(self.metadata.get_backend(backend_name)) if self.noise else {}
        rng = np.random.default_rng(mapped.primitive.get("seed_simulator"))
        joblog.emit(f"meas_type={mapped.meas_type}: IQ points emulated from the calibrated "
                    "readout errors (docs/noise.md).")
        return PrimitiveResult(
            [iq.convert_pub_result(pub_result, pub.circuit, mapped.meas_type, readout, rng)
             for pub, pub_result in zip(pubs, result)], metadata=result.metadata)

    def execute_estimator(self, pubs: list[Any], options: dict[str, Any],
                          backend_name: str) -> Any:
        """IBM's resilience levels and options through the client's engine (``mitigation``);
        plain Aer when a job asks for no suppression or mitigation."""
        return mitigation.execute_estimator(self, pubs, options, backend_name, self._estimate)

    def _estimate(self, pubs: list[Any], mapped: MappedOptions, backend_name: str) -> Any:
        """The direct path: Estimator pubs on ``BackendEstimatorV2``."""
        from qiskit.primitives import BackendEstimatorV2

        coerced = coerce_pubs("estimator", pubs,
                              mapped.primitive.get("default_precision", 0.015625))
        self.check_memory(coerced)
        sim = self.simulator_for(backend_name, coerced)
        if mapped.run:  # a per-job noise model or coupling map: leave the cached one alone
            sim = simulator_with_options(sim, **mapped.run)
        primitive = BackendEstimatorV2(backend=sim, options=mapped.primitive)
        return self._run_pubs(primitive, coerced)

    def execute_sampler_batch(self, jobs: list[tuple[list[Any], dict[str, Any]]],
                              backend_name: str) -> list[Any]:
        """Run jobs with equal options in one Aer call; split the results back per job.

        Aer converts the noise model once per call instead of once per job. A job that
        cannot be prepared fails alone; if the shared call fails, each job runs alone.
        """
        from qiskit.primitives import PrimitiveResult

        results: list[Any] = [None] * len(jobs)
        groups: dict[str, list[int]] = {}
        for index, (_pubs, options) in enumerate(jobs):
            groups.setdefault(json.dumps(options, sort_keys=True, default=str), []).append(index)
        for members in groups.values():
            prepared: list[tuple[int, list[Any]]] = []
            mapped = None
            for index in members:
                try:
                    plan = sampler_plan(jobs[index][1])
                    if not plan.direct or plan.warnings:  # twirled, DD or warned: on its own
                        results[index] = self.execute_sampler(jobs[index][0], jobs[index][1],
                                                              backend_name)
                        continue
                    mapped = sampler_options(plan.rest)
                    if mapped.ignored:
                        joblog.emit(f"Options with no effect on the simulator: "
                                    f"{mapped.ignored}")
                    prepared.append((index, self._sampler_pubs(mapped, jobs[index][0])))
                except Exception as exc:  # this job alone fails
                    results[index] = exc
            if not prepared:
                continue
            everything = [pub for _index, pubs in prepared for pub in pubs]
            started = utc_now()
            try:
                combined = self._sampler(mapped, everything, backend_name).run(everything).result()
            except Exception:  # find the culprit: every job on its own
                for index, _pubs in prepared:
                    results[index] = super().execute_sampler_batch([jobs[index]],
                                                                   backend_name)[0]
                continue
            start, stopped = 0, utc_now()
            for index, pubs in prepared:
                mine = list(combined[start:start + len(pubs)])
                span = data_span(started, stopped, dict(enumerate(mine)))  # the shared call
                results[index] = self._measured_as(mapped, pubs, PrimitiveResult(
                    mine, metadata={"version": 2, **execution_metadata([span])}), backend_name)
                start += len(pubs)
        return results

    def _run_pubs(self, primitive: Any, pubs: list[Any]) -> Any:
        """Run pubs one at a time, logging progress; one ``PrimitiveResult`` for all."""
        from qiskit.primitives import PrimitiveResult

        results, spans = [], []
        for index, pub in enumerate(pubs):
            joblog.checkpoint()
            start = utc_now()
            results.append(primitive.run([pub]).result()[0])
            if is_sampler_pub_result(results[-1]):  # when this pub's shots were taken
                spans.append(data_span(start, utc_now(), {index: results[-1]}))
            joblog.emit(f"Pub {index + 1}/{len(pubs)} done ({pub.circuit.num_qubits} qubits, "
                        f"shape {pub.shape}).")
        return PrimitiveResult(results, metadata={"version": 2, **execution_metadata(spans)})
