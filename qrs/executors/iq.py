"""Emulated IQ data (``meas_type="kerneled"`` / ``"avg_kerneled"``) from the readout errors.

A simulator has no measurement traces, so QRS makes the kerneled points a discriminator
would have seen, with these assumptions (docs/noise.md):

* every qubit's |0> and |1> responses are Gaussian blobs centred at ``CENTRE_0 = -1`` and
  ``CENTRE_1 = +1`` (arbitrary units, the same for every qubit), isotropic in I and Q;
* the blob widths are chosen per qubit and state so that the discriminator "I > 0"
  misreads exactly at the calibration's rates: ``sigma_0 = 1 / Φ⁻¹(1 - P(1|0))`` and
  ``sigma_1 = 1 / Φ⁻¹(1 - P(0|1))`` (Φ: the standard normal CDF);
* the blob a shot falls in is the qubit's state after the noisy circuit *without* the
  readout-error channel (the executor runs those shots with the readout errors removed),
  so classifying the IQ points gives back the noisy, misread bits in distribution;
* a classical bit that no measurement writes stays at ``CENTRE_0`` exactly.

Shapes are IBM's: kerneled ``(*pub_shape, shots, creg_size)`` complex, averaged over shots
``(*pub_shape, creg_size)``.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np

#: Where |0> and |1> land in the IQ plane (arbitrary units).
CENTRE_0 = -1.0
CENTRE_1 = 1.0

#: The meas_type values and what each returns.
MEAS_TYPES = ("classified", "kerneled", "avg_kerneled")

#: Readout errors are clipped into (0, MAX_ERROR): at 0.5 the blobs would be infinitely wide.
MAX_ERROR = 0.499


def blob_width(error: float) -> float:
    """The Gaussian width at which "I > 0" misreads a state at ``error`` (0: a point)."""
    if error <= 0:
        return 0.0
    distance = (CENTRE_1 - CENTRE_0) / 2
    return distance / NormalDist().inv_cdf(1 - min(error, MAX_ERROR))


def clbit_qubits(circuit: Any) -> list[int | None]:
    """For each classical bit, the physical qubit its last measurement reads (or None)."""
    qubits: list[int | None] = [None] * circuit.num_clbits
    for instruction in circuit.data:
        if instruction.operation.name == "measure":
            qubit = circuit.find_bit(instruction.qubits[0]).index
            qubits[circuit.find_bit(instruction.clbits[0]).index] = qubit
    return qubits


def kerneled(
    bits: np.ndarray,
    qubits: list[int | None],
    readout: dict[int, tuple[float, float]],
    rng: np.random.Generator,
) -> np.ndarray:
    """IQ points ``(..., shots, n)`` for true bits ``(..., shots, n)`` (little-endian order)."""
    bits = np.asarray(bits, dtype=bool)
    centres = np.where(bits, CENTRE_1, CENTRE_0).astype(complex)
    widths = np.zeros(bits.shape)
    for index, qubit in enumerate(qubits):
        if qubit is None:
            continue
        p10, p01 = readout.get(qubit, (0.0, 0.0))
        widths[..., index] = np.where(bits[..., index], blob_width(p01), blob_width(p10))
    noise = rng.standard_normal(bits.shape) + 1j * rng.standard_normal(bits.shape)
    return centres + widths * noise


def classify(points: np.ndarray) -> np.ndarray:
    """The discriminator the widths are calibrated for: bit = I > 0."""
    return np.real(points) > (CENTRE_0 + CENTRE_1) / 2


def convert_pub_result(
    pub_result: Any,
    circuit: Any,
    meas_type: str,
    readout: dict[int, tuple[float, float]],
    rng: np.random.Generator,
) -> Any:
    """A Sampler pub result of bits as IBM returns it for ``meas_type``."""
    from qiskit.primitives import SamplerPubResult
    from qiskit.primitives.containers import DataBin

    qubits_by_register = _register_qubits(circuit)
    arrays = {}
    for name, bit_array in pub_result.data.items():
        points = kerneled(
            bit_array.to_bool_array(order="little"),
            qubits_by_register.get(name, [None] * bit_array.num_bits),
            readout,
            rng,
        )
        arrays[name] = points.mean(axis=-2) if meas_type == "avg_kerneled" else points
    metadata = {**pub_result.metadata, "meas_type": meas_type}
    return SamplerPubResult(DataBin(**arrays, shape=pub_result.data.shape), metadata=metadata)


def _register_qubits(circuit: Any) -> dict[str, list[int | None]]:
    """Per classical register, the qubit each of its bits reads."""
    by_clbit = clbit_qubits(circuit)
    return {
        register.name: [by_clbit[circuit.find_bit(bit).index] for bit in register]
        for register in circuit.cregs
    }


def program_register(name: str, points: np.ndarray, meas_level: str) -> dict[str, np.ndarray]:
    """An executor program item's data for one register of IQ ``points``, under IBM's keys.

    ``kerneled``: ``name_iq`` → complex ``(*shape, shots, n)``; ``avg_kerneled``:
    ``name_avg_iq`` → ``(*shape, n)``; ``both``: ``name`` → the bits the discriminator
    reads from the same points, and ``name_iq``.
    """
    if meas_level == "avg_kerneled":
        return {f"{name}_avg_iq": points.mean(axis=-2)}
    if meas_level == "both":
        return {name: classify(points), f"{name}_iq": points}
    return {f"{name}_iq": points}
