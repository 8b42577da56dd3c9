"""Client options → what an Aer primitive understands, for the executors' direct path.

``sampler_options`` / ``estimator_options`` map the options of a ``sampler`` or
``estimator`` job onto ``BackendSamplerV2`` / ``BackendEstimatorV2`` options, the way the
client's local service maps them, and return the leftovers so the job log names them.
They are used only when a job needs none of IBM's error suppression or mitigation; the
legacy options that do (``resilience_level``, twirling, DD, ...) are translated for the
client-side primitives by ``legacy_options`` and run by ``mitigation``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any


@dataclass
class MappedOptions:
    """Options mapped for an Aer primitive, plus what QRS could not honour."""

    primitive: dict[str, Any]
    run: dict[str, Any]
    ignored: dict[str, Any]
    meas_type: str = "classified"  # Sampler: bits, or emulated IQ data (executors/iq.py)


def pop_path(tree: dict[str, Any], *path: str) -> Any:
    """Remove and return ``tree[path[0]][path[1]]...``; prune emptied branches."""
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return None
        node = child
    value = node.pop(path[-1], None)
    if len(path) > 1 and not node:
        pop_path(tree, *path[:-1])
    return value


def prune_defaults(tree: Any) -> Any:
    """Drop ``None`` and empty branches (the client sends only what the user set)."""
    if isinstance(tree, dict):
        pruned = {k: prune_defaults(v) for k, v in tree.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    return tree


def simulator_options(options: dict[str, Any], mapped: MappedOptions) -> None:
    """Consume ``simulator.*`` and the runner's ``max_execution_time`` into ``mapped``."""
    if (seed := pop_path(options, "simulator", "seed_simulator")) is not None:
        mapped.primitive["seed_simulator"] = int(seed)
    if (noise_model := pop_path(options, "simulator", "noise_model")) is not None:
        mapped.run["noise_model"] = noise_model
    for key in ("coupling_map", "basis_gates"):
        if (value := pop_path(options, "simulator", key)) is not None:
            mapped.run[key] = value
    pop_path(options, "max_execution_time")  # enforced by the runner


def sampler_options(options: dict[str, Any]) -> MappedOptions:
    """Client Sampler options → Aer ``SamplerV2`` options (as the local service maps them)."""
    options = copy.deepcopy(options)
    mapped = MappedOptions(primitive={}, run={}, ignored={})
    simulator_options(options, mapped)
    if (shots := options.pop("default_shots", None)) is not None:
        mapped.primitive["default_shots"] = int(shots)
    if (meas_type := pop_path(options, "execution", "meas_type")) is not None:
        mapped.meas_type = str(meas_type)
    if pop_path(options, "execution", "init_qubits") is False:
        mapped.ignored["execution.init_qubits"] = False
    mapped.ignored.update(prune_defaults(options))
    return mapped


def estimator_options(options: dict[str, Any]) -> MappedOptions:
    """Client Estimator options → Aer ``EstimatorV2`` options.

    ``default_shots`` becomes ``default_precision = 1/sqrt(shots)``, as the local service
    does. Mitigation settings are the ``legacy_options`` module's; by the time a job comes
    here they are known to ask for nothing (resilience level 0, no twirling, no DD).
    """
    options = copy.deepcopy(options)
    mapped = MappedOptions(primitive={}, run={}, ignored={})
    simulator_options(options, mapped)
    if (seed := options.pop("seed_estimator", None)) is not None:
        mapped.primitive.setdefault("seed_simulator", int(seed))
    if (shots := options.pop("default_shots", None)) is not None:
        mapped.primitive["default_precision"] = 1 / math.sqrt(int(shots))
    if (precision := options.pop("default_precision", None)) is not None:
        mapped.primitive["default_precision"] = float(precision)
    mapped.ignored.update(prune_defaults(options))
    return mapped
