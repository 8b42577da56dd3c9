"""Checks on a job's params tree before any decoder touches it.

``RuntimeDecoder`` trusts its input: it base64-decodes and zlib-inflates QPY and ``.npy``
payloads with no size limit (a 1 MB zlib bomb inflates to 1 GB), ``np.load`` allocates
whatever shape an array header declares before reading the data, qiskit's QPY reader
allocates as many qubits and clbits as a circuit header declares (a 200-byte payload
declaring 65,536 clbits decodes to 15 MB of bit objects; one declaring four billion
qubits pins a CPU for minutes), and ``settings`` objects run arbitrary qiskit
constructors. ``check_params`` walks the plain JSON tree first and refuses, with a 4xx
naming the offending field:

* every ``__type__`` the pubs and options of a primitive job do not need (``settings``
  and ``_json`` beyond the classes of a layer noise model, ``Result``, ``spmatrix``,
  result containers, ...);
* inflated payloads — and the bit objects their circuits declare — above the job's
  decoded-size budget (inflating in bounded steps: a bomb costs one step);
* ``.npy`` arrays whose dtype holds Python objects (loading those would unpickle) or
  whose header declares more data than the payload carries;
* QPY circuits declaring more qubits than the backend has, more clbits than allowed, or
  counts their payload cannot hold;
* ``BindingsArray`` keys that are anything but JSON lists of parameter names (the
  decoder parses each key as JSON a second time, out of this walk's sight otherwise).

``qrs.program_guard`` applies the same primitives to ``executor`` program params.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .compat import qpy_formats
from .errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from .validation import Limits

_STEP = 1 << 20  # inflate 1 MiB at a time

#: Bytes of the decoded-size budget each qubit or clbit a circuit declares costs: qiskit
#: 2.6 holds about 230 bytes of objects per bit (measured: a 65,536-clbit circuit decodes
#: to 15 MB from a 200-byte QPY payload).
BIT_COST = 256

#: The ``__type__`` values ``RuntimeEncoder`` writes for the pubs and options of sampler
#: and estimator jobs; ``qrs.decoder.RestrictedDecoder`` decodes these and no others.
ALLOWED_TYPES = frozenset(
    {
        "ndarray",
        "QuantumCircuit",
        "Parameter",
        "BindingsArray",
        "ObservablesArray",
        "complex",
        "set",
        "datetime",
        "NoiseModel",
        "to_json",
        "NoiseLearnerResult",
    }
)

#: The only classes ``settings`` and ``_json`` objects may name: those IBM's layer-noise
#: model is made of (``resilience.layer_noise_model``: a ``NoiseLearnerResult`` of
#: ``LayerError``\ s), each built from checked parts in time linear in its payload.
CLASS_TYPES = {
    "_json": frozenset(
        {
            (module, name)
            for module in (
                "qiskit_ibm_runtime.utils.noise_learner_result",
                "qiskit_ibm_runtime.results.noise_learner",
            )
            for name in ("LayerError", "PauliLindbladError")
        }
    ),
    "settings": frozenset({("qiskit.quantum_info.operators.symplectic.pauli_list", "PauliList")}),
}

#: Why some decodable types are refused, for the error message.
REFUSED_TYPES = {
    "settings": "it would run the constructor of any qiskit.quantum_info class "
    "(an Operator of n qubits allocates a dense 4^n matrix); only PauliList "
    "(of a layer noise model) is accepted",
    "_json": "it would run the constructor of a result class; only the LayerError and "
    "PauliLindbladError of a layer noise model are accepted",
    "Result": "job params never carry results",
    "spmatrix": "sparse matrices are not accepted in job params",
}


def refusal(node: dict) -> str | None:
    """Why the typed value ``node`` may not be decoded, or ``None`` if it may."""
    kind = node.get("__type__")
    if kind in CLASS_TYPES:
        named = (node.get("__module__"), node.get("__class__"))
        return None if named in CLASS_TYPES[kind] else REFUSED_TYPES[kind]
    if kind in ALLOWED_TYPES:
        return None
    return REFUSED_TYPES.get(str(kind), "no pub or option of a sampler or estimator job needs it")


class Budget:
    """The decoded-size budget of one job, charged as its payloads are checked."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def charge(self, path: str, size: int) -> None:
        """Take ``size`` bytes; 413 naming ``path`` once the job's budget is spent."""
        self.left -= size
        if self.left < 0:
            raise PayloadTooLarge(
                f"{path} decodes to more than the {self.total // 2**20} MiB this job may "
                "decode to (QRS_MAX_DECODED_MB), counting inflated payloads and the "
                f"{BIT_COST} bytes each declared qubit or clbit takes once decoded."
            )


@dataclass(frozen=True)
class CircuitHeader:
    """What a QPY circuit header declares, read before qiskit allocates any of it."""

    num_qubits: int
    num_clbits: int


def check_params(params: Any, limits: Limits) -> int:
    """Refuse params whose decoding would be unsafe; ``params`` is the parsed JSON.

    Returns the bytes charged to the decoded-size budget.
    """
    budget = Budget(limits.max_decoded_bytes)
    for path, node in typed_nodes(params):
        _check_typed(path, node, limits, budget)
    return budget.total - budget.left


def typed_nodes(tree: Any, root: str = "params") -> Iterator[tuple[str, dict]]:
    """Every ``{"__type__": ...}`` object in the tree, with its path; iterative, so a
    deeply nested body cannot exhaust the stack."""
    for path, node in walk(tree):
        if isinstance(node, dict) and "__type__" in node:
            yield path_text(path, root), node


def walk(tree: Any) -> Iterator[tuple[tuple, Any]]:
    """Every dict and list in ``tree`` with its path as nested ``(parent, key)`` pairs."""
    stack: list[tuple[Any, tuple]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend(
                (value, (path, key))
                for key, value in node.items()
                if isinstance(value, (dict, list))
            )
        elif isinstance(node, list):
            stack.extend(
                (value, (path, index))
                for index, value in enumerate(node)
                if isinstance(value, (dict, list))
            )


def path_text(path: tuple, root: str = "params") -> str:
    """``(((), 'pubs'), 0)`` → ``params.pubs[0]`` (built only where needed)."""
    parts = []
    while path:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return root + "".join(reversed(parts))


def _check_typed(path: str, node: dict, limits: Limits, budget: Budget) -> None:
    """Check one typed value and charge what it decodes to."""
    kind, value = node.get("__type__"), node.get("__value__")
    if why := refusal(node):
        raise InvalidInput(
            f"{path}: values of type {str(kind)[:40]!r} are not accepted in job params: {why}."
        )
    if kind == "ndarray" and isinstance(value, str) and not _is_extrapolator(value):
        check_npy(path, b64(path, value), budget)
    elif kind == "QuantumCircuit" and isinstance(value, str):
        raw, _ = inflate(path, b64(path, value), budget)
        check_qpy(path, raw, limits, budget, programs=1)
    elif kind == "BindingsArray":
        check_bindings_keys(path, value)


def check_bindings_keys(path: str, value: Any) -> None:
    """``BindingsArray`` keys are JSON text the decoder parses again: only lists of
    parameter names (what ``RuntimeEncoder`` writes) may pass."""
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, dict):
        return  # the decoder refuses a non-dict itself
    for key in data:
        try:
            names = json.loads(key)
        except (ValueError, RecursionError):
            names = None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise InvalidInput(
                f"{path}.__value__.data: the BindingsArray key {key[:60]!r} "
                "is not a JSON list of parameter names."
            )


def _is_extrapolator(value: str) -> bool:
    """ZNE extrapolator names travel as ``ndarray`` values that are plain strings."""
    from typing import get_args

    from .compat import ExtrapolatorType

    return value in get_args(ExtrapolatorType)


def b64(path: str, value: str) -> bytes:
    """Strict base64 decoding; 400 naming ``path`` for anything else."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{path}: __value__ is not valid base64 ({exc}).") from None


def inflate(path: str, data: bytes, budget: Budget, keep: int | None = None) -> tuple[bytes, int]:
    """Inflate zlib ``data`` in bounded steps, charging its size to ``budget``.

    Returns the first ``keep`` bytes (all of them when ``keep`` is ``None``) and the
    inflated size. A stream
    past the budget is refused (413) after one step, whatever it would inflate to.
    """
    inflater = zlib.decompressobj()
    kept: list[bytes] = []
    held, size, pending = 0, 0, data
    try:
        while pending or not inflater.eof:
            chunk = inflater.decompress(pending, _STEP)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            budget.charge(path, len(chunk))
            if keep is None or held < keep:
                piece = chunk if keep is None else chunk[: keep - held]
                kept.append(piece)
                held += len(piece)
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise InvalidInput(f"{path}: __value__ is not valid zlib data ({exc}).") from None
    if not inflater.eof:
        raise InvalidInput(f"{path}: __value__ is truncated zlib data.")
    return b"".join(kept), size


def check_npy(path: str, data: bytes, budget: Budget) -> None:
    """An ``.npy`` array: plain dtype, and a header that matches the data it carries."""
    import numpy as np
    from numpy.lib import format as npy

    head, size = inflate(path, data, budget, keep=65536)
    stream = io.BytesIO(head)
    try:
        major, _minor = npy.read_magic(stream)
        reader = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
        shape, _fortran, dtype = reader(stream)
    except Exception as exc:  # numpy raises ValueError, SyntaxError, TypeError
        raise InvalidInput(f"{path}: not a valid .npy array ({exc}).") from None
    if dtype.hasobject:
        raise InvalidInput(
            f"{path}: arrays of Python objects are not accepted (loading them "
            "would unpickle data); send numeric arrays."
        )
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    carried = size - stream.tell()
    if declared != carried:
        raise InvalidInput(
            f"{path}: the array header declares shape {tuple(shape)} "
            f"({declared} bytes) but the payload carries {carried} bytes."
        )


def check_qpy(
    path: str, raw: bytes, limits: Limits, budget: Budget, programs: int | None = None
) -> list[CircuitHeader]:
    """QPY holding ``programs`` circuits (any number if ``None``) within the limits.

    Each circuit's declared qubits and clbits are charged ``BIT_COST`` bytes apiece.
    """
    headers = qpy_headers(path, raw, programs)
    for index, circuit in enumerate(headers):
        where = path if len(headers) == 1 else f"{path} circuit {index}"
        if circuit.num_qubits > limits.backend_qubits:
            raise InvalidInput(
                f"{where}: the circuit has {circuit.num_qubits} qubits but the "
                f"backend has only {limits.backend_qubits}. Transpile it for the "
                "backend first."
            )
        if circuit.num_clbits > limits.max_clbits:
            raise InvalidInput(
                f"{where}: the circuit has {circuit.num_clbits} classical bits; "
                f"the limit is {limits.max_clbits} (QRS_MAX_CLBITS)."
            )
        budget.charge(where, (circuit.num_qubits + circuit.num_clbits) * BIT_COST)
    return headers


def qpy_headers(path: str, raw: bytes, programs: int | None = None) -> list[CircuitHeader]:
    """The circuit headers of a QPY file, each checked against what the file can hold."""
    formats = qpy_formats()
    stream = io.BytesIO(raw)
    try:
        preface, version = struct.unpack("!6sB", stream.read(7))
        if preface != b"QISKIT":
            raise ValueError("no QPY preface")
        stream.seek(0)
        if version < 10:
            header = formats.FILE_HEADER._make(
                struct.unpack(formats.FILE_HEADER_PACK, stream.read(formats.FILE_HEADER_SIZE))
            )
        else:
            header = formats.FILE_HEADER_V10._make(
                struct.unpack(
                    formats.FILE_HEADER_V10_PACK, stream.read(formats.FILE_HEADER_V10_SIZE)
                )
            )
        count = header.num_programs
        if programs is not None and count != programs:
            raise ValueError(f"{count} programs instead of {programs}")
        if not 1 <= count <= len(raw) // formats.CIRCUIT_TABLE_ENTRY_SIZE:
            raise ValueError(f"{count} programs cannot fit in {len(raw)} bytes")
        if version >= 5:
            stream.read(1)  # program type key
        if version >= 16:
            offsets = [
                struct.unpack(
                    formats.CIRCUIT_TABLE_ENTRY_PACK, stream.read(formats.CIRCUIT_TABLE_ENTRY_SIZE)
                )[0]
                for _ in range(count)
            ]
        elif count == 1:
            offsets = [stream.tell()]
        else:
            raise ValueError("several circuits need QPY version 16 or later")
        headers = []
        for offset in offsets:
            stream.seek(offset)
            if version >= 12:
                circuit = formats.CIRCUIT_HEADER_V12._make(
                    struct.unpack(
                        formats.CIRCUIT_HEADER_V12_PACK,
                        stream.read(formats.CIRCUIT_HEADER_V12_SIZE),
                    )
                )
            else:
                circuit = formats.CIRCUIT_HEADER_V2._make(
                    struct.unpack(
                        formats.CIRCUIT_HEADER_V2_PACK, stream.read(formats.CIRCUIT_HEADER_V2_SIZE)
                    )
                )
            _plausible(circuit, len(raw))
            headers.append(CircuitHeader(circuit.num_qubits, circuit.num_clbits))
    except (struct.error, ValueError) as exc:
        raise InvalidInput(f"{path}: not a valid QPY circuit ({exc}).") from None
    return headers


def _plausible(circuit: Any, size: int) -> None:
    """Counts and lengths a circuit header declares must fit in its file: the reader
    reserves memory for them before it finds out they do not."""
    for field in ("name_size", "metadata_size", "num_registers", "num_instructions", "num_vars"):
        declared = getattr(circuit, field, 0)
        if declared > size:
            raise ValueError(f"the header declares {field}={declared} in a {size}-byte file")
