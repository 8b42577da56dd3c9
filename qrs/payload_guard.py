"""Checks on a job's params tree before ``RuntimeDecoder`` touches it.

``RuntimeDecoder`` trusts its input: it base64-decodes and zlib-inflates QPY and ``.npy``
payloads with no size limit (a 1 MB zlib bomb inflates to 1 GB), ``np.load`` allocates
whatever shape an array header declares before reading the data, and qiskit's QPY
reader allocates as many qubits and clbits as a circuit header declares (a 200-byte
payload declaring four billion qubits pins a CPU for minutes). ``check_params`` walks
the plain JSON tree first and refuses, with a 4xx naming the offending field:

* inflated payloads above the decoded-size budget (inflating in bounded steps, never
  holding more than one step in memory);
* ``.npy`` arrays whose dtype holds Python objects (loading those would unpickle) or
  whose header declares more data than the payload carries;
* QPY circuits declaring more qubits than the backend has, or more clbits than allowed;
* sparse matrices (``.npz`` is a zip archive of its own; no pub needs one).
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import zlib
from typing import TYPE_CHECKING, Any, Iterator

from .compat import qpy_formats
from .errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from .validation import Limits

_STEP = 1 << 20  # inflate 1 MiB at a time


def check_params(params: Any, limits: Limits) -> None:
    """Refuse params whose decoding would be unsafe; ``params`` is the parsed JSON."""
    budget = limits.max_decoded_bytes
    for path, node in _typed_nodes(params):
        budget -= _check_typed(path, node, limits, budget)


def _typed_nodes(tree: Any) -> Iterator[tuple[str, dict]]:
    """Every ``{"__type__": ...}`` object in the tree, with its path; iterative, so a
    deeply nested body cannot exhaust the stack."""
    stack: list[tuple[Any, tuple]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if "__type__" in node:
                yield _path_text(path), node
            stack.extend((value, (path, key)) for key, value in node.items()
                         if isinstance(value, (dict, list)))
        elif isinstance(node, list):
            stack.extend((value, (path, index)) for index, value in enumerate(node)
                         if isinstance(value, (dict, list)))


def _path_text(path: tuple) -> str:
    """``(((), 'pubs'), 0)`` → ``params.pubs[0]`` (built only for typed nodes)."""
    parts = []
    while path:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "params" + "".join(reversed(parts))


def _check_typed(path: str, node: dict, limits: Limits, budget: int) -> int:
    """Check one typed value; return the bytes it decodes to."""
    kind, value = node.get("__type__"), node.get("__value__")
    if kind == "spmatrix":
        raise InvalidInput(f"{path}: sparse matrices are not accepted in job params.")
    if kind == "ndarray" and isinstance(value, str) and not _is_extrapolator(value):
        return _check_npy(path, _b64(path, value), budget)
    if kind in ("QuantumCircuit", "Instruction") and isinstance(value, str):
        return _check_qpy(path, _b64(path, value), limits, budget)
    return 0


def _is_extrapolator(value: str) -> bool:
    """ZNE extrapolator names travel as ``ndarray`` values that are plain strings."""
    from typing import get_args

    from qiskit_ibm_runtime.options.zne_options import ExtrapolatorType

    return value in get_args(ExtrapolatorType)


def _b64(path: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{path}: __value__ is not valid base64 ({exc}).") from None


def _inflate(path: str, data: bytes, budget: int, keep: int) -> tuple[bytes, int]:
    """Inflate zlib ``data`` step by step; return its first ``keep`` bytes and its size.

    Refuses (413) as soon as the output passes ``budget``, so a bomb costs one step.
    """
    inflater = zlib.decompressobj()
    head, size, pending = b"", 0, data
    try:
        while pending or not inflater.eof:
            chunk = inflater.decompress(pending, _STEP)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            if len(head) < keep:
                head += chunk[:keep - len(head)]
            if size > budget:
                raise PayloadTooLarge(
                    f"{path} inflates to more than {budget // 2**20} MiB, the decoded-size "
                    "budget left for this job (QRS_MAX_DECODED_MB).")
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise InvalidInput(f"{path}: __value__ is not valid zlib data ({exc}).") from None
    if not inflater.eof:
        raise InvalidInput(f"{path}: __value__ is truncated zlib data.")
    return head, size


def _check_npy(path: str, data: bytes, budget: int) -> int:
    """An ``.npy`` array: plain dtype, and a header that matches the data it carries."""
    import numpy as np
    from numpy.lib import format as npy

    head, size = _inflate(path, data, budget, keep=65536)
    stream = io.BytesIO(head)
    try:
        major, _minor = npy.read_magic(stream)
        reader = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
        shape, _fortran, dtype = reader(stream)
    except Exception as exc:  # numpy raises ValueError/SyntaxError/TypeError for bad headers
        raise InvalidInput(f"{path}: not a valid .npy array ({exc}).") from None
    if dtype.hasobject:
        raise InvalidInput(f"{path}: arrays of Python objects are not accepted (loading them "
                           "would unpickle data); send numeric arrays.")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    carried = size - stream.tell()
    if declared != carried:
        raise InvalidInput(f"{path}: the array header declares shape {tuple(shape)} "
                           f"({declared} bytes) but the payload carries {carried} bytes.")
    return size


def _check_qpy(path: str, data: bytes, limits: Limits, budget: int) -> int:
    """A QPY file of one circuit whose header stays within the backend's width."""
    formats = qpy_formats()

    head, size = _inflate(path, data, budget, keep=4096)
    stream = io.BytesIO(head)
    try:
        preface, version = struct.unpack("!6sB", stream.read(7))
        if preface != b"QISKIT":
            raise ValueError("no QPY preface")
        stream.seek(0)
        if version < 10:
            header = formats.FILE_HEADER._make(struct.unpack(
                formats.FILE_HEADER_PACK, stream.read(formats.FILE_HEADER_SIZE)))
        else:
            header = formats.FILE_HEADER_V10._make(struct.unpack(
                formats.FILE_HEADER_V10_PACK, stream.read(formats.FILE_HEADER_V10_SIZE)))
        if header.num_programs != 1:
            raise ValueError(f"{header.num_programs} programs instead of one circuit")
        if version >= 5:
            stream.read(1)  # program type key
        if version >= 16:
            offset, = struct.unpack(formats.CIRCUIT_TABLE_ENTRY_PACK,
                                    stream.read(formats.CIRCUIT_TABLE_ENTRY_SIZE))
            stream.seek(offset)
        if version >= 12:
            circuit = formats.CIRCUIT_HEADER_V12._make(struct.unpack(
                formats.CIRCUIT_HEADER_V12_PACK, stream.read(formats.CIRCUIT_HEADER_V12_SIZE)))
        else:
            circuit = formats.CIRCUIT_HEADER_V2._make(struct.unpack(
                formats.CIRCUIT_HEADER_V2_PACK, stream.read(formats.CIRCUIT_HEADER_V2_SIZE)))
    except (struct.error, ValueError) as exc:
        raise InvalidInput(f"{path}: not a valid QPY circuit ({exc}).") from None
    if circuit.num_qubits > limits.backend_qubits:
        raise InvalidInput(f"{path}: the circuit has {circuit.num_qubits} qubits but the "
                           f"backend has only {limits.backend_qubits}. Transpile it for the "
                           "backend first.")
    if circuit.num_clbits > limits.max_clbits:
        raise InvalidInput(f"{path}: the circuit has {circuit.num_clbits} classical bits; "
                           f"the limit is {limits.max_clbits} (QRS_MAX_CLBITS).")
    return size
