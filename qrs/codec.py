"""Pure functions between wire payloads and qiskit objects; no HTTP, no store.

* ``decode_params`` turns the params text the client sent into pubs and options
  (``RuntimeDecoder``: QPY through qiskit's loader, arrays through numpy with
  ``allow_pickle=False``; nothing in a payload can execute code).
* ``sampler_options`` / ``estimator_options`` map the client's options onto what an Aer
  primitive understands, returning the leftovers so the runner can log them as ignored.
* ``encode_result`` produces the text ``GET /jobs/<id>/results`` serves (in IBM's
  shapes: ``result_shapes.conform``).
"""

from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidInput
from .states import PROGRAMS, Program  # noqa: F401  (PROGRAMS: importable from here too)

#: ``RuntimeDecoder`` parses with the ``ast`` module (numpy's ``.npy`` headers, QPY's
#: symbolic expressions), whose recursion counter CPython 3.11 shares between threads
#: (python/cpython#106905): two decodes at once — a POST validating while a runner thread
#: decodes — can fail a valid job with "SystemError: AST constructor recursion depth
#: mismatch". Decoding is milliseconds; one at a time per process costs nothing.
_DECODE_LOCK = threading.Lock()


@dataclass
class DecodedParams:
    """The parts of a job's params that the executor needs."""

    pubs: list[tuple]
    options: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def params_object(params: str | dict, expected: str) -> dict[str, Any]:
    """Params text or parsed JSON as a dict; ``InvalidInput`` naming what was ``expected``."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError as exc:
            raise InvalidInput(f"params is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidInput(f"params must be a JSON object {expected}.")
    return params


def decode_runtime_json(text: str | dict) -> Any:
    """Params text (or its parsed JSON) through ``RuntimeDecoder``; ``InvalidInput`` if bad."""
    from qiskit_ibm_runtime import RuntimeDecoder

    try:
        with _DECODE_LOCK:
            return json.loads(text if isinstance(text, str) else json.dumps(text),
                              cls=RuntimeDecoder)
    except InvalidInput:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 - qiskit's Rust QPY reader panics as BaseException
        # Malformed QPY, base64, zlib or JSON: all the user's input. Rust errors carry a
        # multi-line coloured backtrace; the first line says what was wrong.
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise InvalidInput(f"params could not be decoded: {type(exc).__name__}: {reason}") \
            from None


def decode_params(text: str | dict, program_id: str) -> DecodedParams:
    """Decode params into pubs (tuples) and options. Raises ``InvalidInput`` on bad input."""
    raw = decode_runtime_json(text)
    if not isinstance(raw, dict):
        raise InvalidInput("params must be a JSON object with a 'pubs' list.")
    pubs = raw.pop("pubs", None)
    if not isinstance(pubs, list) or not pubs:
        raise InvalidInput("params.pubs must be a non-empty list of pubs.")
    options: Any = raw.pop("options", None)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InvalidInput("params.options must be an object.")
    width = 3 if program_id == Program.SAMPLER.value else 4
    decoded = []
    for index, pub in enumerate(pubs):
        pub = list(pub) if isinstance(pub, (list, tuple)) else [pub]
        if not pub or len(pub) > width:
            raise InvalidInput(f"params.pubs[{index}] must be a list of 1 to {width} items.")
        decoded.append(tuple(pub))
    return DecodedParams(pubs=decoded, options=options, extra=raw)


def coerce_pubs(program_id: str, pubs: list[tuple], default: float | int | None) -> list[Any]:
    """Turn decoded pub tuples into qiskit ``SamplerPub``/``EstimatorPub`` objects."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    coerce = SamplerPub.coerce if program_id == Program.SAMPLER.value else EstimatorPub.coerce
    out = []
    for index, pub in enumerate(pubs):
        try:
            out.append(coerce(pub, default))
        except Exception as exc:
            raise InvalidInput(f"params.pubs[{index}] is not a valid {program_id} pub: {exc}") \
                from None
    return out


@dataclass
class MappedOptions:
    """Options mapped for an Aer primitive, plus what QRS could not honour."""

    primitive: dict[str, Any]
    run: dict[str, Any]
    ignored: dict[str, Any]
    meas_type: str = "classified"  # Sampler: bits, or emulated IQ data (executors/iq.py)


def _pop_path(tree: dict[str, Any], *path: str) -> Any:
    """Remove and return ``tree[path[0]][path[1]]...``; prune emptied branches."""
    node: Any = tree
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return None
    value = node.pop(path[-1], None)
    if len(path) > 1 and not node:
        _pop_path(tree, *path[:-1])
    return value


def _prune_defaults(tree: Any) -> Any:
    """Drop ``None`` and empty branches (the client sends only what the user set)."""
    if isinstance(tree, dict):
        pruned = {k: _prune_defaults(v) for k, v in tree.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    return tree


def _common_options(options: dict[str, Any], mapped: MappedOptions) -> None:
    if (seed := _pop_path(options, "simulator", "seed_simulator")) is not None:
        mapped.primitive["seed_simulator"] = int(seed)
    if (noise_model := _pop_path(options, "simulator", "noise_model")) is not None:
        mapped.run["noise_model"] = noise_model
    for key in ("coupling_map", "basis_gates"):
        if (value := _pop_path(options, "simulator", key)) is not None:
            mapped.run[key] = value
    _pop_path(options, "max_execution_time")  # enforced by the runner


def sampler_options(options: dict[str, Any]) -> MappedOptions:
    """Client Sampler options → Aer ``SamplerV2`` options (as the local service maps them)."""
    options = copy.deepcopy(options)
    mapped = MappedOptions(primitive={}, run={}, ignored={})
    _common_options(options, mapped)
    if (shots := options.pop("default_shots", None)) is not None:
        mapped.primitive["default_shots"] = int(shots)
    if (meas_type := _pop_path(options, "execution", "meas_type")) is not None:
        mapped.meas_type = str(meas_type)
    _pop_path(options, "execution", "init_qubits")
    mapped.ignored.update(_prune_defaults(options))
    return mapped


def estimator_options(options: dict[str, Any]) -> MappedOptions:
    """Client Estimator options → Aer ``EstimatorV2`` options.

    ``default_shots`` becomes ``default_precision = 1/sqrt(shots)``, as the local service
    does; ``resilience_level`` and mitigation settings have no simulator meaning.
    """
    options = copy.deepcopy(options)
    mapped = MappedOptions(primitive={}, run={}, ignored={})
    _common_options(options, mapped)
    if (shots := options.pop("default_shots", None)) is not None:
        mapped.primitive["default_precision"] = 1 / math.sqrt(int(shots))
    if (precision := options.pop("default_precision", None)) is not None:
        mapped.primitive["default_precision"] = float(precision)
    mapped.ignored.update(_prune_defaults(options))
    return mapped


def encode_result(result: Any, window: tuple[datetime, datetime] | None = None) -> str:
    """The result text the client decodes with ``RuntimeDecoder``, in IBM's shapes.

    Every result is stored through here, so ``result_shapes.conform`` applies to every
    executor's output; ``window`` (when the executor ran) dates Sampler data that carries
    no execution spans of its own.
    """
    from qiskit_ibm_runtime import RuntimeEncoder

    from .result_shapes import conform

    return json.dumps(conform(result, window), cls=RuntimeEncoder)


def decode_result(text: str) -> Any:
    """Inverse of ``encode_result`` (tests and tools)."""
    from qiskit_ibm_runtime import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)
