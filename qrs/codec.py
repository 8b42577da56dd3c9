"""Pure functions between wire payloads and qiskit objects; no HTTP, no store.

* ``decode_params`` turns the params text the client sent into pubs and options
  (``RestrictedDecoder``: the client's ``RuntimeDecoder`` limited to the types pubs and
  options need; QPY through qiskit's loader, arrays through numpy with
  ``allow_pickle=False``; nothing in a payload can execute code).
  The options themselves are mapped on the execution side (``executors/options.py``).
* ``encode_result`` produces the text ``GET /jobs/<id>/results`` serves (in IBM's
  shapes: ``result_shapes.conform``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidInput, PayloadTooLarge
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
    """Params text (or its parsed JSON) through ``RestrictedDecoder`` (the client's
    ``RuntimeDecoder`` limited to the types job params need); ``InvalidInput`` if bad."""
    from .decoder import RestrictedDecoder

    try:
        with _DECODE_LOCK:
            return json.loads(
                text if isinstance(text, str) else json.dumps(text), cls=RestrictedDecoder
            )
    except InvalidInput:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except MemoryError:
        raise PayloadTooLarge(
            "params could not be decoded within the memory this server "
            "allows for it (QRS_VALIDATION_MEMORY_MB); send a smaller "
            "job."
        ) from None
    except BaseException as exc:  # noqa: B036 - qiskit's Rust QPY reader panics as BaseException
        # Malformed QPY, base64, zlib or JSON: all the user's input. Rust errors carry a
        # multi-line coloured backtrace; the first line says what was wrong.
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise InvalidInput(
            f"params could not be decoded: {type(exc).__name__}: {reason}"
        ) from None


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
    if program_id == Program.ESTIMATOR.value and "resilience_level" in raw:
        # The client sends resilience_level beside the options (``_get_program_inputs``);
        # QRS carries it inside them, where the client-side EstimatorOptions keep it too.
        options = {**options, "resilience_level": raw.pop("resilience_level")}
    width = 3 if program_id == Program.SAMPLER.value else 4
    decoded = []
    for index, pub in enumerate(pubs):
        pub = list(pub) if isinstance(pub, (list, tuple)) else [pub]
        if not pub or len(pub) > width:
            raise InvalidInput(f"params.pubs[{index}] must be a list of 1 to {width} items.")
        decoded.append(tuple(pub))
    return DecodedParams(pubs=decoded, options=options, extra=raw)


def coerce_pubs(program_id: str, pubs: list[tuple], default: float | None) -> list[Any]:
    """Turn decoded pub tuples into qiskit ``SamplerPub``/``EstimatorPub`` objects."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    coerce = SamplerPub.coerce if program_id == Program.SAMPLER.value else EstimatorPub.coerce
    out = []
    for index, pub in enumerate(pubs):
        try:
            out.append(coerce(pub, default))
        except Exception as exc:
            raise InvalidInput(
                f"params.pubs[{index}] is not a valid {program_id} pub: {exc}"
            ) from None
    return out


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
