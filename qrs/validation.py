"""What a job is checked against before it is stored: ``Limits``, and pubs against them.

``Limits`` gathers, once per submission, every bound a job must respect: the server's
(``Config``: ``QRS_MAX_*``) and the backend's (its qubits, its ``max_shots``, the
operations its target runs). The payload guard (before decoding), the pub checks (after
decoding) and the executor-program checks all read the same object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInput, LimitExceeded
from .states import Program

if TYPE_CHECKING:
    from .config import Config


@dataclass(frozen=True)
class Limits:
    """Every bound a job is checked against (the messages name the setting to change)."""

    max_pubs: int
    max_shots: int
    max_pub_shots: int
    max_parameter_bindings: int
    max_observables: int
    max_decoded_bytes: int
    max_clbits: int
    max_result_bytes: int = 0  # Σ shots × classical bits of a job's results; 0: no limit
    backend: str = ""
    backend_qubits: int = 2**31
    backend_max_shots: int | None = None
    operations: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Config, backend: Any = None) -> Limits:
        """The server's limits from ``config`` and, with a ``backend`` (a ``BackendV2``,
        as ``BackendMetadataProvider.get_backend`` returns), the device's."""
        server = cls(
            max_pubs=config.max_pubs,
            max_shots=config.max_shots,
            max_pub_shots=config.max_pub_shots,
            max_parameter_bindings=config.max_parameter_bindings,
            max_observables=config.max_observables,
            max_decoded_bytes=config.max_decoded_mb * 2**20,
            max_clbits=config.max_clbits,
            max_result_bytes=config.max_result_mb * 2**20,
        )
        if backend is None:
            return server
        configuration = backend.configuration() if hasattr(backend, "configuration") else None
        return replace(
            server,
            backend=backend.name,
            backend_qubits=backend.num_qubits,
            backend_max_shots=getattr(configuration, "max_shots", None),
            operations=frozenset(backend.target.operation_names),
        )


def validate_pubs(
    program_id: str, pubs: list[tuple], options: dict[str, Any], limits: Limits
) -> int:
    """Check decoded pubs against the backend and the limits; returns the number of
    circuits (parameter bindings). IBM refuses more shots per pub than the device's
    ``max_shots``, and so does QRS.

    Raises ``InvalidInput`` for impossible pubs and ``LimitExceeded`` for limits.
    """
    from .codec import coerce_pubs

    sampler = program_id == Program.SAMPLER.value
    if len(pubs) > limits.max_pubs:
        raise LimitExceeded(
            f"{len(pubs)} pubs in one job; the limit is {limits.max_pubs} "
            "(QRS_MAX_PUBS). Split the work into several jobs."
        )
    default = options.get("default_shots") if sampler else options.get("default_precision")
    coerced = coerce_pubs(
        program_id, pubs, default if default is not None else (1024 if sampler else 0.015625)
    )
    circuits = 0
    total_shots = 0
    result_bytes = 0
    for index, pub in enumerate(coerced):
        if pub.circuit.num_qubits > limits.backend_qubits:
            raise InvalidInput(
                f"params.pubs[{index}]: the circuit has {pub.circuit.num_qubits} qubits but the "
                f"backend has only {limits.backend_qubits}. Transpile it for the backend first."
            )
        bindings = int(np.prod(pub.shape)) if pub.shape else 1
        if bindings > limits.max_parameter_bindings:
            raise LimitExceeded(
                f"params.pubs[{index}] binds {bindings} parameter sets; the limit is "
                f"{limits.max_parameter_bindings} (QRS_MAX_PARAMETER_BINDINGS)."
            )
        circuits += bindings
        if sampler:
            total_shots += _pub_shots(index, int(pub.shots), limits) * bindings
            result_bytes += int(pub.shots) * bindings * packed_bytes(pub.circuit)
        else:
            observables = int(pub.observables.size)
            if observables > limits.max_observables:
                raise LimitExceeded(
                    f"params.pubs[{index}] has {observables} observables; the limit is "
                    f"{limits.max_observables} (QRS_MAX_OBSERVABLES)."
                )
            precision = float(pub.precision)
            if not precision > 0:
                raise InvalidInput(f"params.pubs[{index}]: precision must be positive.")
            total_shots += math.ceil(1.0 / precision**2) * bindings
    if total_shots > limits.max_shots:
        raise LimitExceeded(
            f"The job asks for {total_shots} shots in total; the limit per job is "
            f"{limits.max_shots} (QRS_MAX_SHOTS). Use fewer shots or split the job."
        )
    check_result_size(result_bytes, limits, "packed 8 to a byte")
    return circuits


def packed_bytes(circuit: Any) -> int:
    """Bytes one shot of ``circuit`` takes in a Sampler result: each register's bits,
    packed into whole bytes (``BitArray``)."""
    return sum(-(-creg.size // 8) for creg in circuit.cregs)


def check_result_size(nbytes: int, limits: Limits, unit: str) -> None:
    """Refuse a job whose results would hold more than ``QRS_MAX_RESULT_MB`` of bits."""
    if limits.max_result_bytes and nbytes > limits.max_result_bytes:
        raise LimitExceeded(
            f"The job's results would hold {nbytes / 2**20:,.0f} MiB of measured bits (Σ "
            f"shots × classical bits, {unit}); the limit is "
            f"{limits.max_result_bytes // 2**20} MiB (QRS_MAX_RESULT_MB). Use fewer shots or "
            "classical bits, or split the job."
        )


def _pub_shots(index: int, shots: int, limits: Limits) -> int:
    """A Sampler pub's shots, refused above the server's or the device's per-pub limit."""
    if shots > limits.max_pub_shots:
        raise LimitExceeded(
            f"params.pubs[{index}] asks for {shots} shots; the limit per pub is "
            f"{limits.max_pub_shots} (QRS_MAX_PUB_SHOTS)."
        )
    if limits.backend_max_shots and shots > limits.backend_max_shots:
        raise LimitExceeded(
            f"params.pubs[{index}] asks for {shots} shots; the backend allows at most "
            f"{limits.backend_max_shots} per pub (max_shots in its configuration)."
        )
    return shots
