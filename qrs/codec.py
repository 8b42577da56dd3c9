"""Pure functions between wire payloads and qiskit objects; no HTTP, no store.

* ``decode_params`` turns the params text the client sent into pubs and options
  (``RuntimeDecoder``: QPY through qiskit's loader, arrays through numpy with
  ``allow_pickle=False``; nothing in a payload can execute code).
* ``validate_pubs`` checks pubs against the backend and the configured limits.
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

import numpy as np

from .errors import InvalidInput, LimitExceeded

PROGRAMS = ("sampler", "estimator", "executor")

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


@dataclass(frozen=True)
class PubLimits:
    """The per-job limits ``validate_pubs`` enforces (from ``Config``)."""

    max_pubs: int
    max_shots: int
    max_pub_shots: int
    max_parameter_bindings: int
    max_observables: int


def decode_params(text: str | dict, program_id: str) -> DecodedParams:
    """Decode params into pubs (tuples) and options. Raises ``InvalidInput`` on bad input."""
    from qiskit_ibm_runtime import RuntimeDecoder

    try:
        with _DECODE_LOCK:
            raw = json.loads(text if isinstance(text, str) else json.dumps(text),
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
    if not isinstance(raw, dict):
        raise InvalidInput("params must be a JSON object with a 'pubs' list.")
    pubs = raw.pop("pubs", None)
    if not isinstance(pubs, list) or not pubs:
        raise InvalidInput("params.pubs must be a non-empty list of pubs.")
    options = raw.pop("options", None)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InvalidInput("params.options must be an object.")
    width = 3 if program_id == "sampler" else 4
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

    coerce = SamplerPub.coerce if program_id == "sampler" else EstimatorPub.coerce
    out = []
    for index, pub in enumerate(pubs):
        try:
            out.append(coerce(pub, default))
        except Exception as exc:
            raise InvalidInput(f"params.pubs[{index}] is not a valid {program_id} pub: {exc}") \
                from None
    return out


def validate_pubs(program_id: str, pubs: list[tuple], options: dict[str, Any],
                  backend_qubits: int, limits: PubLimits,
                  backend_max_shots: int | None = None) -> int:
    """Check pubs against the backend and the limits; returns the number of circuits.

    ``backend_max_shots`` is the ``max_shots`` of the backend's configuration: IBM refuses
    more shots per pub than the device allows, and so does QRS.

    Raises ``InvalidInput`` for impossible pubs and ``LimitExceeded`` for limits.
    """
    from qiskit import QuantumCircuit

    if len(pubs) > limits.max_pubs:
        raise LimitExceeded(f"{len(pubs)} pubs in one job; the limit is {limits.max_pubs} "
                            "(QRS_MAX_PUBS). Split the work into several jobs.")
    default = (options.get("default_shots") if program_id == "sampler"
               else options.get("default_precision"))
    coerced = coerce_pubs(program_id, pubs, default if default is not None else
                          (1024 if program_id == "sampler" else 0.015625))
    circuits = 0
    total_shots = 0
    for index, pub in enumerate(coerced):
        circuit: QuantumCircuit = pub.circuit
        if circuit.num_qubits > backend_qubits:
            raise InvalidInput(
                f"params.pubs[{index}]: the circuit has {circuit.num_qubits} qubits but the "
                f"backend has only {backend_qubits}. Transpile it for the backend first.")
        bindings = int(np.prod(pub.shape)) if pub.shape else 1
        if bindings > limits.max_parameter_bindings:
            raise LimitExceeded(
                f"params.pubs[{index}] binds {bindings} parameter sets; the limit is "
                f"{limits.max_parameter_bindings} (QRS_MAX_PARAMETER_BINDINGS).")
        circuits += bindings
        if program_id == "sampler":
            shots = int(pub.shots)
            if shots > limits.max_pub_shots:
                raise LimitExceeded(
                    f"params.pubs[{index}] asks for {shots} shots; the limit per pub is "
                    f"{limits.max_pub_shots} (QRS_MAX_PUB_SHOTS).")
            if backend_max_shots and shots > backend_max_shots:
                raise LimitExceeded(
                    f"params.pubs[{index}] asks for {shots} shots; the backend allows at most "
                    f"{backend_max_shots} per pub (max_shots in its configuration).")
            total_shots += shots * bindings
        else:
            observables = int(pub.observables.size)
            if observables > limits.max_observables:
                raise LimitExceeded(
                    f"params.pubs[{index}] has {observables} observables; the limit is "
                    f"{limits.max_observables} (QRS_MAX_OBSERVABLES).")
            precision = float(pub.precision)
            if not precision > 0:
                raise InvalidInput(f"params.pubs[{index}]: precision must be positive.")
            total_shots += math.ceil(1.0 / precision**2) * bindings
    if total_shots > limits.max_shots:
        raise LimitExceeded(
            f"The job asks for {total_shots} shots in total; the limit per job is "
            f"{limits.max_shots} (QRS_MAX_SHOTS). Use fewer shots or split the job.")
    return circuits


def unsupported_instructions(circuit: Any, supported: frozenset[str]) -> set[str]:
    """Names of operations in ``circuit`` (control-flow blocks included) outside ``supported``."""
    from qiskit.circuit import CONTROL_FLOW_OP_NAMES, ControlFlowOp

    allowed = supported | CONTROL_FLOW_OP_NAMES | {"barrier", "measure", "delay", "reset", "store"}
    missing: set[str] = set()
    for instruction in circuit.data:
        operation = instruction.operation
        if isinstance(operation, ControlFlowOp):
            for block in operation.blocks:
                missing |= unsupported_instructions(block, supported)
        elif operation.name not in allowed:
            missing.add(operation.name)
    return missing


def check_instructions(pubs: list[tuple], supported: frozenset[str], backend: str) -> None:
    """Refuse circuits the device cannot run (not transpiled for it), as IBM does at submit."""
    for index, pub in enumerate(pubs):
        missing = unsupported_instructions(pub[0], supported)
        if missing:
            raise InvalidInput(
                f"params.pubs[{index}]: the circuit uses {', '.join(sorted(missing))}, which "
                f"{backend} does not support. Transpile it for the backend first, e.g. with "
                "generate_preset_pass_manager(backend=backend).run(circuit).")


def used_qubits(circuit: Any) -> set[int]:
    """Indices of the qubits an instruction touches (ISA circuits carry many idle ones)."""
    used: set[int] = set()
    for instruction in circuit.data:
        if instruction.operation.name != "barrier":
            used.update(circuit.find_bit(q).index for q in instruction.qubits)
    return used


def observable_qubits(observables: Any) -> set[int]:
    """Qubits on which any Pauli term of an ``ObservablesArray`` is not the identity."""
    support: set[int] = set()
    for observable in np.ravel(observables.tolist()):
        for pauli in observable:
            support.update(i for i, char in enumerate(reversed(pauli)) if char != "I")
    return support


def pub_qubits(pub: Any) -> set[int]:
    """Qubits a Sampler or Estimator pub needs simulated (and their noise)."""
    qubits = used_qubits(pub.circuit)
    if hasattr(pub, "observables"):
        qubits |= observable_qubits(pub.observables)
    return qubits


def circuit_width(pubs: list[tuple]) -> int:
    """Qubits the widest circuit of decoded pubs actually uses."""
    return max(len(used_qubits(pub[0])) for pub in pubs)


@dataclass
class MappedOptions:
    """Options mapped for an Aer primitive, plus what QRS could not honour."""

    primitive: dict[str, Any]
    run: dict[str, Any]
    ignored: dict[str, Any]
    twirled: bool = False  # twirling.enable_gates: the planner may use Pauli-twirled noise


def _pop_path(tree: dict[str, Any], *path: str) -> Any:
    """Remove and return ``tree[path[0]][path[1]]...``; prune emptied branches."""
    node = tree
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
    mapped.twirled = bool(_pop_path(options, "twirling", "enable_gates"))


def sampler_options(options: dict[str, Any]) -> MappedOptions:
    """Client Sampler options → Aer ``SamplerV2`` options (as the local service maps them)."""
    options = copy.deepcopy(options)
    mapped = MappedOptions(primitive={}, run={}, ignored={})
    _common_options(options, mapped)
    if (shots := options.pop("default_shots", None)) is not None:
        mapped.primitive["default_shots"] = int(shots)
    meas_type = _pop_path(options, "execution", "meas_type")
    if meas_type not in (None, "classified"):
        mapped.ignored["execution.meas_type"] = meas_type
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
