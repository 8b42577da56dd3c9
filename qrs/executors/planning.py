"""A simulation plan per pub, chosen from the circuit's structure before anything runs.

The planner splits a pub's circuit into independent parts (``components.py``) and picks
a method for each:

* a part that is only measured is sampled from its readout error (no simulator);
* a Clifford part goes to ``stabilizer`` when its noise is a Pauli/reset mixture, or, with
  ``QRS_NOISE_APPROXIMATION`` allowing it, when its noise is replaced by its Pauli twirl;
* otherwise ``density_matrix`` (noisy; cost does not grow with shots), ``statevector``
  (trajectories when noisy) and ``matrix_product_state`` (cost set by entanglement, not
  width) are estimated and the fastest that fits in memory wins.

Memory and time are estimated per candidate (``Estimate``); a pub is refused only when
some part fits no candidate, with a message naming each and what it would need.
``QRS_SIMULATION_METHOD`` other than ``automatic`` forces the method of every simulated
part. The time model is coarse (CPU-seconds from per-amplitude costs measured on Aer
0.18; within an order of magnitude): it ranks candidates and sizes tasks, never refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import JobRefused
from .clifford import non_clifford_qubits
from .components import Part, bond_exponents, find_parts, simulation_order
from .estimates import Estimate, PlanSettings, Workload, estimate_method, mib, seconds, workload

#: Methods the planner chooses between, in order of preference on equal cost.
METHODS = ("stabilizer", "density_matrix", "statevector", "matrix_product_state")
READOUT = "readout"
#: Bond dimension an entanglement probe runs with (see ``plan_pub``'s ``probe``).
PROBE_BOND = 16
#: Parts at least this wide whose structural MPS bound exceeds PROBE_BOND are probed...
PROBE_MIN_QUBITS = 12
#: ...unless another method that fits is estimated below this many CPU-seconds.
PROBE_UNLESS_SECONDS = 10.0


@dataclass(frozen=True)
class NoiseFacts:
    """What the planner needs to know about the pub's noise."""

    noisy: bool = False
    stabilizer_ok: Callable[[tuple[int, ...]], bool] = lambda qubits: True
    twirled: bool = False  # the job's program twirls its gates
    delay_noise: bool = False  # delays relax (the device model's relaxation pass)


@dataclass
class PartPlan:
    """How one independent part runs."""

    part: Part
    method: str
    order: tuple[int, ...]
    estimate: Estimate
    reason: str
    considered: list[Estimate] = field(default_factory=list)
    noise: str = "exact"  # exact | pauli | none
    chunks: int = 1
    split: str = ""  # "shots", "bindings" or "" (see splitting.py)
    bond_guard: int = 0  # MPS on a probe's evidence: cap the bond so memory stays bounded

    @property
    def device(self) -> str:
        return self.estimate.device


@dataclass
class PubPlan:
    """A pub's plan: simulated parts and the qubits sampled from readout alone."""

    parts: list[PartPlan]
    passive: list[Part]
    width: int

    @property
    def tasks(self) -> int:
        return sum(plan.chunks for plan in self.parts)

    @property
    def method(self) -> str:
        methods = sorted(
            {plan.method for plan in self.parts},
            key=METHODS.index if all(p.method in METHODS for p in self.parts) else str,
        )
        return "+".join(methods + ([READOUT] if self.passive else [])) or READOUT

    def summary(self) -> dict[str, Any]:
        """The plan as JSON-friendly metadata (result metadata ``simulation``)."""
        return {
            "method": self.method,
            "parts": [
                {
                    "qubits": plan.part.width,
                    "method": plan.method,
                    "device": plan.device,
                    "noise": plan.noise,
                    "reason": plan.reason,
                    "memory_mb": round(plan.estimate.memory_mb, 3),
                    "cpu_seconds": round(plan.estimate.cpu_seconds, 3),
                    "tasks": plan.chunks,
                }
                for plan in self.parts
            ],
            "readout_only_qubits": sum(part.width for part in self.passive),
            "tasks": self.tasks,
        }

    def describe(self) -> str:
        """One log line: the parts, their methods and why."""
        pieces = [
            f"{plan.part.width}-qubit part → {plan.method} on {plan.device} "
            f"({plan.reason}; {mib(plan.estimate.memory_mb)} MiB, "
            f"~{seconds(plan.estimate.cpu_seconds)} CPU"
            + (f", {plan.chunks} tasks by {plan.split}" if plan.chunks > 1 else "")
            + ")"
            for plan in self.parts
        ]
        passive = sum(part.width for part in self.passive)
        if passive:
            pieces.append(f"{passive} measured-only qubit(s) sampled from their readout error")
        count = len(self.parts) + len(self.passive)
        head = f"{count} independent part(s)" if count > 1 else "one part"
        return f"{head}: " + "; ".join(pieces or ["nothing to simulate"])


def _stabilizer(
    part: Part, non_clifford: set[int], example: str, noise: NoiseFacts, settings: PlanSettings
) -> tuple[str | None, str]:
    """(noise kind, reason) when the stabilizer method can run ``part``; (None, why not)."""
    if non_clifford.intersection(part.qubits):
        return None, f"not Clifford: {example}"
    if not noise.noisy:
        return "none", "Clifford circuit, no noise"
    if noise.stabilizer_ok(part.qubits) and not (part.delays and noise.delay_noise):
        return "exact", "Clifford circuit, noise a Pauli/reset mixture"
    if settings.approximation == "pauli":
        return "pauli", "Clifford circuit, noise Pauli-twirled (QRS_NOISE_APPROXIMATION=pauli)"
    if settings.approximation == "twirled" and noise.twirled:
        return "pauli", (
            "Clifford circuit, program twirled: noise Pauli-twirled "
            "(QRS_NOISE_APPROXIMATION=twirled)"
        )
    return None, (
        "noise not a Pauli channel (T2 > T1 relaxation); "
        "QRS_NOISE_APPROXIMATION=pauli would allow it"
    )


def _probed_bond(
    part: Part,
    order: tuple[int, ...],
    settings: PlanSettings,
    probe: Callable[[Part, tuple[int, ...]], int] | None,
    alternative: float,
) -> int:
    """The bond dimension an ideal MPS run reaches, when the structural bound is too loose.

    Counting gates across each cut bounds entanglement, but loosely: a routed chain's
    SWAPs push the bound to 2^11 where the state never needs more than 2. Parts whose
    bound exceeds ``PROBE_BOND`` are run once, ideal, capped at ``PROBE_BOND``
    (milliseconds to seconds); a bond below the cap replaces the bound (0: no probe).
    Not worth it when another method that fits takes under ``PROBE_UNLESS_SECONDS``.
    """
    if (
        probe is None
        or part.width < PROBE_MIN_QUBITS
        or part.per_shot
        or settings.forced_method not in ("", "matrix_product_state")
        or alternative < PROBE_UNLESS_SECONDS
    ):
        return 0
    if max(bond_exponents(part, order), default=0) <= math.log2(PROBE_BOND):
        return 0
    observed = probe(part, order)
    return observed if 0 < observed < PROBE_BOND else 0


def _plan_part(
    part: Part,
    work: Workload,
    noise: NoiseFacts,
    settings: PlanSettings,
    non_clifford: set[int],
    example: str,
    probe: Callable[[Part, tuple[int, ...]], int] | None = None,
) -> PartPlan:
    order = simulation_order(part)
    forced = settings.forced_method
    candidates = (forced,) if forced else METHODS
    considered: list[Estimate] = []
    noise_kind = {}
    probed = 0
    for method in candidates:
        if method == "matrix_product_state":
            others = [e.cpu_seconds for e in considered if e.fits]
            probed = _probed_bond(part, order, settings, probe, min(others, default=math.inf))
        estimate = estimate_method(method, part, order, work, noise.noisy, settings, probed)
        if method == "stabilizer":
            kind, why = _stabilizer(part, non_clifford, example, noise, settings)
            if kind is None:
                estimate = Estimate(method, math.nan, math.nan, False, note=why)
            noise_kind[method] = (kind, why)
        elif method == "density_matrix" and not noise.noisy and not forced:
            continue  # without noise a state vector does the same work in its square root
        considered.append(estimate)
    fitting = [e for e in considered if e.fits]
    if not fitting:
        raise _refusal(part, considered, settings)
    best = min(fitting, key=lambda e: (e.cpu_seconds, candidates.index(e.method)))
    kind, why = noise_kind.get(best.method, ("exact" if noise.noisy else "none", ""))
    if forced:
        why = f"QRS_SIMULATION_METHOD={forced}"
    elif best.method != "stabilizer":
        rivals = [f"{e.method} ~{seconds(e.cpu_seconds)}" for e in fitting if e is not best]
        why = "fastest that fits" + (f" (vs {', '.join(rivals)})" if rivals else "")
        if best.method == "matrix_product_state":
            why += f", {best.note}"
    if best.method != "matrix_product_state":
        order = part.qubits
    plan = PartPlan(
        part=part,
        method=best.method,
        order=order,
        estimate=best,
        reason=why,
        considered=considered,
        noise=kind or "exact",
        bond_guard=_bond_guard(settings, part.width)
        if probed and best.method == "matrix_product_state"
        else 0,
    )
    _size_tasks(plan, work, noise.noisy, settings)
    return plan


def _bond_guard(settings: PlanSettings, width: int) -> int:
    """The largest bond dimension whose MPS fits in memory (a probed part runs under it)."""
    guard = max(PROBE_BOND, int(math.sqrt(settings.memory_limit_mb * 2**20 / (32 * width))))
    return min(guard, settings.mps_max_bond) if settings.mps_max_bond else guard


def _size_tasks(plan: PartPlan, work: Workload, noisy: bool, settings: PlanSettings) -> None:
    """Split a heavy part into tasks: parameter bindings, else the Estimator's measurement
    bases (groups of observables), else the shots of trajectories."""
    wanted = settings.split_tasks or settings.slots
    if wanted <= 1 or plan.estimate.cpu_seconds < settings.split_min_seconds:
        return
    trajectories = (
        noisy and plan.method in ("statevector", "matrix_product_state", "stabilizer")
    ) or plan.part.per_shot
    if work.bindings >= 2:
        plan.chunks, plan.split = min(wanted, work.bindings), "bindings"
    elif work.bases >= 2:
        plan.chunks, plan.split = min(wanted, work.bases), "observables"
    elif trajectories and work.shots >= 2:
        plan.chunks, plan.split = min(wanted, work.shots), "shots"


def _refusal(part: Part, considered: list[Estimate], settings: PlanSettings) -> JobRefused:
    limits = (
        f"this server's limit of {settings.memory_limit_mb:,.0f} MiB ({settings.memory_setting})"
    )
    if settings.gpu_memory_mb:
        limits = (
            f"this server's limits of {settings.gpu_memory_mb:,.0f} MiB on the GPU "
            f"({settings.gpu_setting}) and {settings.memory_limit_mb:,.0f} MiB on the "
            f"CPU ({settings.memory_setting})"
        )
    first = part.qubits[:6]
    shown = ", ".join(map(str, first)) + (", ..." if part.width > len(first) else "")
    hint = (
        "Use fewer entangled qubits, a Clifford circuit, or cap the MPS bond dimension "
        "(QRS_MPS_MAX_BOND_DIMENSION, an approximation)."
    )
    if settings.forced_method:
        hint = (
            f"QRS_SIMULATION_METHOD={settings.forced_method} is forced; "
            "'automatic' lets the planner choose. " + hint
        )
    return JobRefused(
        f"No simulation plan fits: a {part.width}-qubit circuit part (qubits {shown}) needs "
        + "; ".join(e.describe() for e in considered)
        + f" — above {limits}. {hint}"
    )


def plan_pub(
    kind: str,
    pub: Any,
    noise: NoiseFacts,
    settings: PlanSettings,
    observed: set[int] | None = None,
    probe: Callable[[Part, tuple[int, ...]], int] | None = None,
) -> PubPlan:
    """The plan for one coerced pub; raises ``JobRefused`` when no plan fits.

    ``observed`` (estimator) are the qubits the observables act on: parts outside them are
    not simulated at all, and observed idle qubits form one more (passive) part.
    ``probe(part, order)`` runs an ideal MPS simulation of a part and returns the bond
    dimension it reached (see ``_probed_bond``).
    """
    circuit = pub.circuit
    parts = find_parts(circuit)
    if observed is not None:
        used = {q for part in parts for q in part.qubits}
        parts = [p for p in parts if observed.intersection(p.qubits)]
        idle = sorted(observed - used)
        if idle:  # measured in the observables' bases: a part without gates of its own
            parts.append(Part(tuple(idle), frozenset(), 0, False, False, ()))
    work = workload(kind, pub)
    non_clifford, example = non_clifford_qubits(circuit, pub.parameter_values)
    simulated = [p for p in parts if not (p.passive and kind == "sampler")]
    plans = [
        _plan_part(part, work, noise, settings, non_clifford, example, probe) for part in simulated
    ]
    passive = [p for p in parts if p.passive and kind == "sampler"]
    return PubPlan(parts=plans, passive=passive, width=circuit.num_qubits)


def simulated_width(pub: Any) -> int:
    """Qubits of a pub's widest part that needs a simulator (hybrid routing uses it)."""
    circuit = pub.circuit if hasattr(pub, "circuit") else pub[0]
    return max((p.width for p in find_parts(circuit) if not p.passive), default=0)
