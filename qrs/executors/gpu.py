"""GPUExecutor: the LocalExecutor's Aer code path with ``device="GPU"``.

The planner (``planning.py``) runs statevector and density-matrix parts on the GPU,
against ``QRS_GPU_MEMORY_LIMIT``; stabilizer and matrix-product-state parts, which Aer runs
on the CPU only, stay on the CPU against ``QRS_MAX_MEMORY_MB``.

Needs the GPU build of Aer (``pip install '.[gpu]'``, which pulls ``qiskit-aer-gpu``),
the CUDA 12 runtime libraries (the ``nvidia-*-cu12`` wheels qiskit-aer-gpu depends on)
and a visible NVIDIA GPU. ``setup()`` checks all three and runs a one-qubit circuit on
the GPU, so a machine that cannot run GPU jobs fails at start-up with a message saying
what is missing — never silently on the CPU, never deep inside a job. An operator may opt
in to the CPU instead with ``QRS_GPU_FALLBACK=cpu``; that is logged as a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
from importlib import metadata as dist_metadata
from typing import TYPE_CHECKING, Any

from .base import ExecutorUnavailable
from .local import LocalExecutor

if TYPE_CHECKING:
    from ..config import Config
    from ..metadata import BackendMetadataProvider

log = logging.getLogger(__name__)

#: Share of the GPU's memory a job's state may take when QRS_GPU_MEMORY_LIMIT is unset
#: (Aer needs working space besides the state vector).
GPU_MEMORY_SHARE = 0.9

FALLBACK_CHOICES = ("", "cpu")


def _installed(distribution: str) -> str | None:
    """The installed version of a distribution, or ``None``."""
    try:
        return dist_metadata.version(distribution)
    except dist_metadata.PackageNotFoundError:
        return None


def cuda_wheels() -> list[str]:
    """Installed CUDA 12 runtime wheels (``nvidia-cuda-runtime-cu12``, ``nvidia-cublas-cu12``…)."""
    names = {dist.metadata["Name"] or "" for dist in dist_metadata.distributions()}
    return sorted(
        name
        for name in names
        if name.lower().startswith("nvidia-") and name.lower().endswith("-cu12")
    )


def diagnose_gpu() -> str | None:
    """``None`` if Aer offers a GPU device here, else what is missing and how to fix it."""
    from qiskit_aer import AerSimulator

    devices = tuple(AerSimulator().available_devices())
    if "GPU" in devices:
        return None
    missing: list[str] = []
    gpu_build = _installed("qiskit-aer-gpu") or _installed("qiskit-aer-gpu-cu11")
    if not gpu_build:
        missing.append(
            f"the GPU build of Aer (only the CPU build qiskit-aer {_installed('qiskit-aer')} is "
            "installed). Fix: pip install '.[gpu]' (or pip install qiskit-aer-gpu); both "
            "builds provide the qiskit_aer package, so then run pip uninstall -y qiskit-aer "
            "&& pip install --force-reinstall --no-deps qiskit-aer-gpu"
        )
    elif _installed("qiskit-aer"):
        missing.append(
            f"a clean GPU build of Aer: qiskit-aer-gpu {gpu_build} and the CPU-only qiskit-aer "
            f"{_installed('qiskit-aer')} are both installed and the CPU build's files won. "
            "Fix: pip uninstall -y qiskit-aer && pip install --force-reinstall --no-deps "
            "qiskit-aer-gpu"
        )
    if not cuda_wheels():
        missing.append(
            "the CUDA 12 runtime libraries (no nvidia-*-cu12 wheels installed). Fix: "
            "pip install qiskit-aer-gpu pulls them (nvidia-cuda-runtime-cu12, "
            "nvidia-cublas-cu12, nvidia-nvjitlink-cu12, ...), or install CUDA 12 system-wide"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        missing.append(f"a visible GPU: CUDA_VISIBLE_DEVICES={visible!r} hides every GPU")
    elif not (os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi")):
        missing.append(
            "a visible NVIDIA GPU (no /dev/nvidia0 and no nvidia-smi). Fix: run on a machine "
            "with an NVIDIA GPU and driver; in a container pass it through (docker run "
            "--gpus all)"
        )
    causes = missing or ["(no cause found: check the NVIDIA driver and CUDA 12 runtime)"]
    return (
        f"QRS_EXECUTOR=gpu needs Aer's GPU device, but AerSimulator().available_devices() "
        f"is {devices} here. Missing: "
        + "; ".join(causes)
        + ". Or run on the CPU: QRS_EXECUTOR=local, or QRS_GPU_FALLBACK=cpu to fall back "
        "with a warning."
    )


class GPUExecutor(LocalExecutor):
    """Aer on one NVIDIA GPU (``QRS_GPU_DEVICE``), optionally with batched shots."""

    device = "GPU"
    memory_setting = "QRS_GPU_MEMORY_LIMIT"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fell_back = False
        self.gpu_memory_mb = 0
        self.custatevec = False

    @property
    def name(self) -> str:
        return "gpu-fallback-cpu" if self.fell_back else "gpu"

    def setup(self, config: Config, metadata: BackendMetadataProvider) -> None:
        """Check the GPU now: fail (or, if opted in, fall back to the CPU) at start-up."""
        super().setup(config, metadata)
        fallback = config.gpu_fallback.strip().lower()
        if fallback not in FALLBACK_CHOICES:
            raise ExecutorUnavailable(
                f"QRS_GPU_FALLBACK={config.gpu_fallback!r}: use 'cpu' to fall back to the CPU "
                "when no GPU is usable, or leave it unset to refuse to start."
            )
        self.custatevec = config.gpu_custatevec
        problem = self.diagnose() or self.probe()
        if problem is None:
            log.info(
                "GPU executor ready: GPU %d, %s MiB of GPU memory, method %s, "
                "batched shots %s, cuStateVec %s",
                config.gpu_device,
                self.gpu_memory_mb or "unknown",
                self.method,
                config.gpu_batched_shots,
                self.custatevec,
            )
            return
        if fallback != "cpu":
            raise ExecutorUnavailable(problem)
        self.fell_back = True
        self.device = "CPU"
        self.memory_setting = LocalExecutor.memory_setting
        log.warning("=" * 72)
        log.warning("GPU UNAVAILABLE: QRS_GPU_FALLBACK=cpu, so EVERY GPU JOB RUNS ON THE CPU.")
        log.warning("%s", problem)
        log.warning("=" * 72)

    # ----------------------------------------------------------------- checks
    def diagnose(self) -> str | None:
        """What stops Aer from offering a GPU here (``None`` when it does)."""
        return diagnose_gpu()

    def probe(self) -> str | None:
        """Run a one-qubit circuit with this executor's options; learn the GPU's memory.

        A cuStateVec request the Aer build cannot honour is dropped with a warning rather
        than failing every job.
        """
        try:
            self.gpu_memory_mb = self._run_probe()
            return None
        except Exception as first:
            if not self.custatevec:
                return (
                    f"Aer offers a GPU but a test circuit on GPU {self.config.gpu_device} "
                    f"failed: {first}. Check QRS_GPU_DEVICE and the CUDA 12 runtime."
                )
            self.custatevec = False
            log.warning(
                "cuStateVec is not usable with this Aer build (%s); running without "
                "it (QRS_GPU_CUSTATEVEC ignored).",
                first,
            )
            return self.probe()

    def _run_probe(self) -> int:
        from qiskit import QuantumCircuit
        from qiskit_aer import AerSimulator

        circuit = QuantumCircuit(1)
        circuit.h(0)
        circuit.measure_all()
        options = {**self.simulator_options(), "method": "statevector"}
        result = AerSimulator(**options).run(circuit, shots=1).result()
        if not result.success:
            raise RuntimeError(result.status)
        return int(result.metadata.get("max_gpu_memory_mb") or 0)

    # ---------------------------------------------------------- configuration
    @property
    def noise(self) -> bool:
        return super().noise and self.config.gpu_use_noise

    @property
    def memory_limit_mb(self) -> int:
        """``QRS_GPU_MEMORY_LIMIT``, else 90 % of the GPU's memory (the CPU's on fallback)."""
        if self.fell_back:
            return super().memory_limit_mb
        if self.config.gpu_memory_limit_mb:
            return self.config.gpu_memory_limit_mb
        if self.gpu_memory_mb:
            return int(self.gpu_memory_mb * GPU_MEMORY_SHARE)
        return super().memory_limit_mb

    def simulator_options(self, device: str | None = None) -> dict[str, Any]:
        """GPU options for GPU simulators; stabilizer and MPS parts get the CPU's."""
        options = super().simulator_options(device)
        if options["device"] != "GPU":
            return options
        options["target_gpus"] = [self.config.gpu_device]
        if self.config.gpu_batched_shots:
            options["batched_shots_gpu"] = True
        if self.custatevec:
            options["cuStateVec_enable"] = True
        return options
