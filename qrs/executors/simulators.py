"""The simulators a local executor runs tasks on, built once and cut down per task.

Noise models (slow to build for 100+ qubit devices) and ``AerSimulator`` s are cached per
backend and calibration in module-level caches shared by every job and executor of the
process; each task gets a cheap view of the simulator with its method and the noise model
cut down (and renumbered) to its qubits (``noise.py``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .. import joblog
from ..compat import simulator_with_options
from . import splitting
from .device_noise import device_noise_model
from .noise import LRUCache, restrict_noise_model
from .options import MappedOptions

#: Process-wide caches: noise model per (backend, calibration date), simulator per
#: (backend, calibration date, noise on/off, simulator options).
_NOISE_MODELS: dict[tuple[str, str], Any] = {}
_SIMULATORS: dict[tuple, Any] = {}
_CACHE_LOCK = threading.RLock()
#: Simulator views per (simulator, noise model, method, noise kind, qubits, mapping).
_VIEWS = LRUCache(256)
#: Parts up to this wide get compacted errors whatever their method (see ``compacts``).
COMPACT_MAX_QUBITS = 12


class SimulatorCache:
    """The simulator half of ``LocalExecutor``: ``metadata``, ``noise``, ``device``,
    ``simulator_options`` and ``method_options`` come from the executor."""

    metadata: Any

    @property
    def noise(self) -> bool:
        raise NotImplementedError

    @property
    def device(self) -> str:
        raise NotImplementedError

    def simulator_options(self, device: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def method_options(self, method: str) -> dict[str, Any]:
        raise NotImplementedError

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

    def simulator(self, backend_name: str, device: str | None = None) -> Any:
        """The cached ``AerSimulator`` for a backend, shared by every job of the process."""
        options = self.simulator_options(device)
        calibration = self.calibration(backend_name)
        key = (
            backend_name,
            calibration,
            self.noise,
            tuple(sorted((name, repr(value)) for name, value in options.items())),
        )
        with _CACHE_LOCK:
            sim = _SIMULATORS.get(key)
            if sim is None:
                from qiskit_aer import AerSimulator

                noise = self.noise_model(backend_name, calibration) if self.noise else None
                sim = AerSimulator.from_backend(
                    self.metadata.get_backend(backend_name), noise_model=noise, **options
                )
                _SIMULATORS[key] = sim
                joblog.emit(
                    f"Built {'noisy' if self.noise else 'ideal'} {options['device']} "
                    f"simulator for {backend_name} (calibration {calibration or 'n/a'})."
                )
            return sim

    def job_noise_model(self, backend_name: str, run_options: dict[str, Any]) -> Any:
        """The noise a job runs with: its own ``simulator.noise_model``, else the device's."""
        if "noise_model" in run_options:
            return run_options["noise_model"]
        return (
            self.noise_model(backend_name, self.calibration(backend_name)) if self.noise else None
        )

    def task_simulator(
        self, backend_name: str, task: splitting.Task, mapped: MappedOptions
    ) -> Any:
        """The simulator for one task: its method, noise cut down (and renumbered) to it.

        A GPU task runs on the GPU only where this executor has one (a GPU executor that
        fell back, or a plain worker, runs it on the CPU). Emulated IQ data
        (``meas_type`` other than ``classified``) brings its own misreads: no readout error.
        """
        device = "GPU" if task.device == "GPU" and self.device == "GPU" else "CPU"
        base = self.simulator(backend_name, device)
        model = self.job_noise_model(backend_name, mapped.run)
        readout = mapped.meas_type == "classified"
        extra = {
            k: v
            for k, v in mapped.run.items()
            if k != "noise_model" and not (task.remapped and k == "coupling_map")
        }
        extra = {**self.method_options(task.method), **extra, **dict(task.aer_options)}
        key = (
            id(base),
            id(model),
            task.method,
            task.noise,
            task.qubits,
            task.remapped,
            readout,
            json.dumps(extra, sort_keys=True, default=repr),
        )

        def build() -> Any:
            noise = None
            if model is not None and task.noise != "none":
                mapping = {q: i for i, q in enumerate(task.qubits)} if task.remapped else None
                noise = restrict_noise_model(
                    model,
                    task.qubits,
                    readout,
                    mapping,
                    compact=self.compacts(task),
                    pauli=task.noise == "pauli",
                )
            return simulator_with_options(base, noise_model=noise, method=task.method, **extra)

        return _VIEWS.get(key, build)

    @staticmethod
    def compacts(task: splitting.Task) -> bool:
        """Whether a task's errors are compacted to Kraus form (``noise.py``).

        It pays where Aer's noise set-up dominates (small parts, the density matrix); wide
        trajectory parts sample mixtures as fast, and compacting 100 qubits' errors costs
        tens of seconds; the stabilizer needs the mixtures.
        """
        if task.method == "stabilizer":
            return False
        return task.method == "density_matrix" or len(task.qubits) <= COMPACT_MAX_QUBITS
