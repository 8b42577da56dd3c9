"""The noise model QRS simulates a device with: its calibration, as the fake backends use it.

Aer's ``NoiseModel.from_backend(backend)`` reads a ``BackendV2``'s target. That gives gate
errors (depolarizing + thermal relaxation over each gate's duration) and, in the model's
custom noise passes, a ``RelaxationNoisePass`` that adds thermal relaxation (T1, T2 from
the target's qubit properties) after every ``delay`` of a scheduled circuit. But the target
keeps only one number per measurement (``error``, the mean of the two readout errors), so
its readout errors come out symmetric: on fake_manila qubit 0 reads wrong 3.53 % of the
time from |0> and from |1>, where the calibration says 1.58 % and 5.48 %. The fake
backends' own models (``FakeBackendV2._get_noise_model_from_backend_v2``) read the
calibration's ``prob_meas1_prep0`` / ``prob_meas0_prep1`` instead, and so does this one;
qubits whose calibration lacks them keep the target's symmetric error.

``readout_errors`` exposes the per-qubit pair for others that need it (IQ emulation).
"""

from __future__ import annotations

import warnings
from typing import Any


def readout_errors(backend: Any) -> dict[int, tuple[float, float]]:
    """``{qubit: (P(read 1 | prep 0), P(read 0 | prep 1))}`` from the calibration.

    Falls back to the target's symmetric ``measure`` error where the calibration has no
    asymmetric pair, and leaves out qubits with neither.
    """
    from qiskit_aer.noise.device import basic_device_readout_errors

    found: dict[int, tuple[float, float]] = {}
    measure = backend.target["measure"] if "measure" in backend.target else {}  # noqa: SIM401 (a Target has no .get)
    for qargs, props in measure.items():
        if props is not None and props.error is not None:
            found[qargs[0]] = (float(props.error), float(props.error))
    properties = _properties(backend)
    if properties is not None:
        for (qubit,), error in basic_device_readout_errors(properties):
            probabilities = error.probabilities
            found[qubit] = (float(probabilities[0][1]), float(probabilities[1][0]))
    return found


def _properties(backend: Any) -> Any:
    """The backend's ``BackendProperties`` (calibration), or None if it has none."""
    getter = getattr(backend, "properties", None)
    if getter is None:
        return None
    try:
        return getter()
    except Exception:  # a backend without a calibration file
        return None


def device_noise_model(backend: Any) -> Any:
    """The noise model of ``backend``'s calibration (``None`` if it has no noise).

    Gate errors and relaxation on delays as Aer derives them from the target; readout
    errors asymmetric, from the calibration (see the module docstring).
    """
    from qiskit_aer.noise import NoiseModel, ReadoutError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no QubitProperties" etc. for odd devices
        model = NoiseModel.from_backend(backend, readout_error=False)
    for qubit, (p1_given_0, p0_given_1) in sorted(readout_errors(backend).items()):
        if p1_given_0 or p0_given_1:
            model.add_readout_error(
                ReadoutError([[1 - p1_given_0, p1_given_0], [p0_given_1, 1 - p0_given_1]]),
                [qubit],
                warnings=False,
            )
    return None if model.is_ideal() else model
