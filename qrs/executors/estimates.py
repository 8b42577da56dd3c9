"""What a simulation method would cost on one part of a pub: memory and CPU time.

The planner (``planning.py``) estimates every candidate method (``estimate_method``), keeping
the fastest that fits. The time model is coarse — CPU-seconds from per-amplitude, per
tableau-row and per MPS-gate costs measured on Aer 0.18, within an order of magnitude — so
it ranks candidates and sizes tasks, and never refuses a pub by itself; memory decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .components import Part, bond_exponents, mps_memory_mb

#: State bytes of methods the planner does not model, for a forced QRS_SIMULATION_METHOD.
_OTHER_STATE_BYTES = {"unitary": lambda n: 16 * 4.0**n, "superop": lambda n: 16 * 16.0**n}
#: Rough single-thread costs (seconds) per amplitude·gate, per tableau-row·gate, per
#: MPS gate and per sampled bit; see the module docstring.
_AMPLITUDE_GATE = 7e-9
_TABLEAU_GATE = 5e-8
_MEASURE_ROW = 6e-8
_MPS_TWO, _MPS_ONE, _MPS_SAMPLE = 1e-4, 3e-5, 2e-6


@dataclass(frozen=True)
class PlanSettings:
    """What the executor lets the planner use (built by ``LocalExecutor.plan_settings``)."""

    memory_limit_mb: float
    memory_setting: str
    threads: int = 1
    forced_method: str = ""  # "" = choose; else QRS_SIMULATION_METHOD
    gpu_memory_mb: float = 0  # > 0: statevector / density_matrix parts run on the GPU
    gpu_setting: str = "QRS_GPU_MEMORY_LIMIT"
    mps_max_bond: int = 0
    approximation: str = "none"  # none | pauli | twirled
    split_tasks: int = 0  # 0 = as many as the executor runs at once (slots)
    slots: int = 1
    split_min_seconds: float = 2.0


@dataclass(frozen=True)
class Estimate:
    """One candidate method for a part: what it would need, and whether that fits."""

    method: str
    memory_mb: float
    cpu_seconds: float
    fits: bool
    device: str = "CPU"
    note: str = ""

    def describe(self) -> str:
        if math.isnan(self.memory_mb):
            return f"'{self.method}' not possible ({self.note})"
        where = " on the GPU" if self.device == "GPU" else ""
        need = f"about {mib(self.memory_mb)} MiB{where}, ~{seconds(self.cpu_seconds)} CPU"
        return f"'{self.method}' {need}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Workload:
    """How much simulating a pub takes, whatever the method."""

    shots: int  # per binding (and per measurement basis for the estimator)
    bindings: int
    bases: int = 1  # estimator measurement bases


def mib(value: float) -> str:
    if not math.isfinite(value):
        return "∞"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def seconds(value: float) -> str:
    if value >= 1e6:
        return f"{value:.1e} s"
    return f"{value:,.0f} s" if value >= 10 else f"{value:.2g} s"


def _runs(part: Part, work: Workload, per_shot: bool) -> int:
    """Independent simulations: one per shot for trajectories, else one per state."""
    states = work.bindings * work.bases
    return states * work.shots if per_shot else states


def estimate_method(
    method: str,
    part: Part,
    order: tuple[int, ...],
    work: Workload,
    noisy: bool,
    settings: PlanSettings,
    probed: int = 0,
) -> Estimate:
    """Memory and CPU time of ``method`` on ``part``; ``fits`` against the device's limit."""
    k = part.width
    gates = part.operations * (2 if noisy else 1)  # each noisy gate is followed by its error
    trajectories = noisy or part.per_shot
    samples = work.shots * work.bindings * work.bases
    device, limit = "CPU", settings.memory_limit_mb
    note = ""
    if method in ("statevector", "density_matrix"):
        exponent = k if method == "statevector" else 2 * k
        memory = math.ldexp(16.0, exponent) / 2**20 if exponent < 1000 else math.inf
        per_shot = trajectories and method == "statevector" or part.per_shot
        runs = _runs(part, work, per_shot)
        cpu = (
            runs * (gates * math.ldexp(_AMPLITUDE_GATE, min(exponent, 1000)) + 2e-5)
            + samples * k * 1e-7
        )
        if settings.gpu_memory_mb:
            device, limit = "GPU", settings.gpu_memory_mb
    elif method == "stabilizer":
        memory = (2 * k) ** 2 / 8 / 2**20
        runs = _runs(part, work, True)
        measures = max(1, len(part.clbits))
        cpu = (
            runs * measures * k * _MEASURE_ROW
            + _runs(part, work, trajectories) * gates * k * _TABLEAU_GATE
        )
    elif method == "matrix_product_state":
        exponents = bond_exponents(part, order)
        if probed:
            exponents = [min(e, math.ceil(math.log2(probed))) for e in exponents]
        memory = mps_memory_mb(exponents, settings.mps_max_bond)
        top = max(exponents, default=0)
        chi = min(math.ldexp(1.0, min(top, 1000)), settings.mps_max_bond or math.inf)
        two = sum(1 for _ in part.links)
        cpu = (
            _runs(part, work, trajectories)
            * (two * (chi**3 * 2e-8 + _MPS_TWO) + (gates - two) * _MPS_ONE)
            + samples * k * chi**2 * _MPS_SAMPLE
        )
        note = (
            f"bond dimension up to 2^{top}"
            if not settings.mps_max_bond or chi < settings.mps_max_bond
            else f"bond dimension capped at {settings.mps_max_bond}"
        )
        if probed:
            note += f", {probed} measured on an ideal run"
    else:
        size = _OTHER_STATE_BYTES.get(method)
        memory = size(k) / 2**20 if size else 0.0
        cpu = 0.0
    return Estimate(method, memory, cpu, memory <= limit, device, note)


def workload(kind: str, pub: Any) -> Workload:
    """Shots, bindings and measurement bases of a coerced Sampler or Estimator pub."""
    bindings = max(1, pub.parameter_values.size)
    if kind == "sampler":
        return Workload(shots=int(pub.shots), bindings=bindings)
    from .observables import measurement_bases

    return Workload(
        shots=math.ceil(1.0 / pub.precision**2),
        bindings=bindings,
        bases=measurement_bases(pub.observables),
    )
