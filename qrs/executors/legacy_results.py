"""Results in the shapes IBM's legacy ``estimator`` and ``sampler`` programs return.

The client decodes an ``estimator`` result into ``EstimatorPubResult`` objects whose data
fields are arrays of the pub's shape — 0-d arrays for a pub of shape ``()``, never Python
floats — and whose metadata the client's own tools read: ``draw_zne_evs`` wants
``metadata["resilience"]["zne"]`` with ``noise_factors``, ``extrapolated_noise_factors``
and ``extrapolators``. Job metadata says which resilience, twirling and DD settings were
applied (IBM's ``PrimitiveResultMetadataModel``), plus ``warnings``: every option QRS
could not honour, with the reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .legacy_options import Plan

#: Data fields of a ZNE result, in IBM's order; the others have ``ensemble_standard_error``.
ZNE_FIELDS = (
    "evs",
    "stds",
    "evs_noise_factors",
    "stds_noise_factors",
    "ensemble_stds_noise_factors",
    "evs_extrapolated",
    "stds_extrapolated",
)
PLAIN_FIELDS = ("evs", "stds", "ensemble_standard_error")


def suppression_metadata(plan: Plan) -> dict[str, Any]:
    """The twirling and DD settings a job ran with (IBM's result metadata models)."""
    twirling = plan.finalized.twirling
    dd = plan.finalized.dynamical_decoupling
    metadata: dict[str, Any] = {
        "dynamical_decoupling": {
            "enable": dd.enable,
            "sequence_type": dd.sequence_type,
            "extra_slack_distribution": dd.extra_slack_distribution,
            "scheduling_method": dd.scheduling_method,
        },
        "twirling": {
            "enable_gates": bool(twirling.enable_gates),
            "enable_measure": bool(twirling.enable_measure),
            "num_randomizations": twirling.num_randomizations,
            "shots_per_randomization": twirling.shots_per_randomization,
            "interleave_randomizations": True,
            "strategy": twirling.strategy,
        },
        "version": 2,
    }
    if plan.warnings:
        metadata["warnings"] = list(plan.warnings)
    return metadata


def zne_settings(plan: Plan) -> dict[str, Any]:
    """Noise factors and extrapolators as resolved (the client's defaults filled in)."""
    from ..compat import normalise_extrapolator, resolve_noise_factors

    zne = plan.finalized.resilience.zne
    noise_factors, extrapolated = resolve_noise_factors(zne)
    return {
        "noise_factors": noise_factors.tolist(),
        "extrapolated_noise_factors": extrapolated.tolist(),
        "extrapolators": normalise_extrapolator(zne.extrapolator),
        "amplifier": zne.amplifier,
    }


def estimator_metadata(plan: Plan) -> dict[str, Any]:
    """Job metadata of an ``estimator`` result."""
    resilience = plan.finalized.resilience
    block: dict[str, Any] = {
        "measure_mitigation": bool(resilience.measure_mitigation),
        "zne_mitigation": bool(resilience.zne_mitigation),
        "pec_mitigation": bool(resilience.pec_mitigation),
    }
    if resilience.zne_mitigation:
        settings = zne_settings(plan)
        block["zne"] = {
            "noise_factors": settings["noise_factors"],
            "extrapolator": settings["extrapolators"],
            "extrapolated_noise_factors": settings["extrapolated_noise_factors"],
        }
    return {
        **suppression_metadata(plan),
        "resilience": block,
        "resilience_level": plan.finalized.resilience_level,
    }


def _field(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A data field as a float array whose leading axes are the pub's shape."""
    array = np.asarray(value, dtype=float)
    if array.shape[: len(shape)] != tuple(shape):
        array = np.broadcast_to(array, (*shape, *array.shape[len(shape) :])).copy()
    return array


def estimator_pub_result(data: Any, shape: tuple[int, ...], metadata: dict[str, Any]) -> Any:
    """An ``EstimatorPubResult`` with IBM's fields (ZNE's or the plain three) and shapes."""
    from qiskit.primitives.containers import DataBin
    from qiskit_ibm_runtime.results import EstimatorPubResult

    names = ZNE_FIELDS if "evs_noise_factors" in data else PLAIN_FIELDS
    fields = {name: _field(data[name] if name in data else data["stds"], shape) for name in names}
    return EstimatorPubResult(DataBin(**fields, shape=tuple(shape)), metadata=metadata)


def pub_metadata(
    pub: Any,
    shots: int,
    precision: float | None,
    num_randomizations: int,
    resilience: dict[str, Any],
) -> dict[str, Any]:
    """Per-pub metadata as IBM's ``PubResultMetadataModel`` has it."""
    return {
        "target_precision": precision if precision is not None else 1 / math.sqrt(shots),
        "shots": int(shots),
        "circuit_metadata": dict(pub.circuit.metadata or {}),
        "num_randomizations": int(num_randomizations),
        "resilience": resilience,
    }


def zne_pub_resilience(plan: Plan, chosen: Any) -> dict[str, Any]:
    """A ZNE pub's ``resilience`` metadata: the chosen extrapolator(s) and what was tried."""
    settings = zne_settings(plan)
    chosen = np.asarray(chosen)
    return {
        "zne": {
            "extrapolator": str(chosen) if chosen.ndim == 0 else chosen.tolist(),
            "extrapolators": settings["extrapolators"],
            "noise_factors": settings["noise_factors"],
            "extrapolated_noise_factors": settings["extrapolated_noise_factors"],
        }
    }


def pec_pub_resilience(gamma: float, unique_layers: int) -> dict[str, Any]:
    """A PEC pub's ``resilience`` metadata: its sampling overhead gamma² and learned layers."""
    overhead = float(gamma) ** 2
    return {
        "pec": {"num_randomizations_scaling": overhead},
        "layer_noise": {"noise_overhead": overhead, "unique_mitigated_layers": unique_layers},
    }


def direct_estimator_result(result: Any, plan: Plan) -> Any:
    """A plain Aer ``EstimatorV2`` result in the legacy shape (no twirling: one ensemble)."""
    from qiskit.primitives import PrimitiveResult

    pubs = []
    for pub_result in result:
        data = dict(pub_result.data.items())
        data.setdefault("ensemble_standard_error", data["stds"])
        metadata = {**pub_result.metadata, "num_randomizations": 1, "resilience": {}}
        pubs.append(estimator_pub_result(data, pub_result.data.shape, metadata))
    return PrimitiveResult(pubs, metadata=estimator_metadata(plan))


def _first_shots(value: Any, shots: int, meas_type: str) -> Any:
    """A register's first ``shots`` shots: bits, or IQ points ``(..., shots, bits)``;
    averaged IQ points (``avg_kerneled``, no shot axis) as they are."""
    if hasattr(value, "slice_shots"):
        return value.slice_shots(range(shots)) if value.num_shots > shots else value
    return value[..., :shots, :] if meas_type == "kerneled" else value


def sampler_pub_result(
    pub_result: Any, shots: int, num_randomizations: int, meas_type: str = "classified"
) -> Any:
    """A twirled ``SamplerPubResult`` cut to the pub's own shots, as IBM returns it."""
    from qiskit.primitives.containers import DataBin, SamplerPubResult

    data = pub_result.data
    fields = {name: _first_shots(value, shots, meas_type) for name, value in data.items()}
    metadata = {
        **pub_result.metadata,
        "shots": int(shots),
        "num_randomizations": int(num_randomizations),
    }
    return SamplerPubResult(DataBin(**fields, shape=data.shape), metadata=metadata)
