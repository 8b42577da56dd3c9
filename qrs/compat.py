"""Every private or internal API of qiskit, qiskit-ibm-runtime and qiskit-aer QRS uses.

They are not promised to stay between releases, so they live here, each behind a small
function, and ``check()`` — called by ``create_app`` at start-up — looks every one of them
up. A client or Aer upgrade that moves one then stops the server at start with a
message naming the package versions, instead of failing jobs one by one.

=====================================================  ==================================
What                                                   Used by
=====================================================  ==================================
``fake_provider.executor.broadcast_sample``            executor programs' samplex draws
``FakeBackendV2._load_json``                           backend configuration/properties
``NoiseModel._default_quantum_errors`` and the other   noise models cut down to a job's
  ``_default_*`` / ``_local_*`` error tables             qubits (``executors/noise.py``)
``AerSimulator._options``                              simulator views with other options
``qiskit.qpy.formats``                                 QPY headers read before decoding
``quantum_program.params_converters``                  executor params decoding
=====================================================  ==================================
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import metadata as dist_metadata
from typing import Any, Callable

#: Packages whose versions a compatibility failure names.
PACKAGES = ("qiskit", "qiskit-ibm-runtime", "qiskit-aer", "samplomatic")

#: Error tables of a NoiseModel, by attribute (all private).
_NOISE_TABLES = ("_default_quantum_errors", "_default_readout_error", "_local_quantum_errors",
                 "_local_readout_errors")
#: Names ``payload_guard`` reads from ``qiskit.qpy.formats``.
_QPY_NAMES = ("FILE_HEADER", "FILE_HEADER_PACK", "FILE_HEADER_SIZE", "FILE_HEADER_V10",
              "FILE_HEADER_V10_PACK", "FILE_HEADER_V10_SIZE", "CIRCUIT_TABLE_ENTRY_PACK",
              "CIRCUIT_TABLE_ENTRY_SIZE", "CIRCUIT_HEADER_V12", "CIRCUIT_HEADER_V12_PACK",
              "CIRCUIT_HEADER_V12_SIZE", "CIRCUIT_HEADER_V2", "CIRCUIT_HEADER_V2_PACK",
              "CIRCUIT_HEADER_V2_SIZE")


class IncompatibleDependency(RuntimeError):
    """An installed qiskit package lacks an API QRS relies on (raised at start-up)."""


def broadcast_sample(samplex: Any, arguments: Any, shape: tuple[int, ...], rng: Any) -> Any:
    """The client reference's samplex draw over an item's broadcast axes."""
    from qiskit_ibm_runtime.fake_provider.executor.broadcast_sample import (
        broadcast_sample as sample)

    return sample(samplex, arguments, shape, rng)


def backend_json(backend: Any, filename: str) -> dict[str, Any]:
    """A fake backend's configuration or properties document, as shipped with the client."""
    return backend._load_json(filename)


@dataclass(frozen=True)
class NoiseTables:
    """A NoiseModel's errors: all-qubit (by gate; readout) and per-qubit (by gate; readout)."""

    default_quantum: dict[str, Any]
    default_readout: Any
    local_quantum: dict[str, dict[tuple[int, ...], Any]]
    local_readout: dict[tuple[int, ...], Any]


def noise_tables(noise_model: Any) -> NoiseTables:
    """The error tables of ``noise_model`` (Aer offers no public way to enumerate them)."""
    return NoiseTables(*(getattr(noise_model, name) for name in _NOISE_TABLES))


def simulator_with_options(simulator: Any, **options: Any) -> Any:
    """A copy of an ``AerSimulator`` with some options changed; the original is untouched.

    Copying the options (not rebuilding with ``from_backend``, which takes seconds for
    large devices) keeps the target, method and thread settings.
    """
    view = copy.copy(simulator)
    view._options = copy.copy(simulator._options)
    view._options.update_options(**options)
    return view


def qpy_formats() -> Any:
    """``qiskit.qpy.formats``: QPY's header layouts (read by the payload guard)."""
    from qiskit.qpy import formats

    return formats


def versions() -> str:
    """``qiskit 2.6.2, qiskit-ibm-runtime 0.51.0, ...`` as installed."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {dist_metadata.version(name)}")
        except dist_metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _checks() -> list[tuple[str, Callable[[], object]]]:
    """``(what, probe)``: each probe raises if its API is gone."""

    def samplex() -> object:
        from qiskit_ibm_runtime.fake_provider.executor import broadcast_sample as module

        return module.broadcast_sample

    def load_json() -> object:
        from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

        return FakeBackendV2._load_json

    def tables() -> object:
        from qiskit_aer.noise import NoiseModel

        model = NoiseModel()
        return [getattr(model, name) for name in _NOISE_TABLES]

    def options() -> object:
        from qiskit_aer import AerSimulator

        return AerSimulator()._options.update_options

    def qpy() -> object:
        formats = qpy_formats()
        return [getattr(formats, name) for name in _QPY_NAMES]

    def converters() -> object:
        from qiskit_ibm_runtime.quantum_program.params_converters import (
            QUANTUM_PROGRAM_PARAMS_CONVERTERS)

        return QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"]

    return [("qiskit_ibm_runtime.fake_provider.executor.broadcast_sample", samplex),
            ("qiskit_ibm_runtime FakeBackendV2._load_json", load_json),
            ("qiskit_aer NoiseModel error tables (" + ", ".join(_NOISE_TABLES) + ")", tables),
            ("qiskit_aer AerSimulator._options.update_options", options),
            ("qiskit.qpy.formats header layouts", qpy),
            ("qiskit_ibm_runtime.quantum_program.params_converters v2.0", converters)]


def check() -> None:
    """Look up every API listed above; raise ``IncompatibleDependency`` naming the missing
    ones and the installed versions (setup.cfg names the versions QRS is tested with)."""
    missing = []
    for what, probe in _checks():
        try:
            probe()
        except Exception as exc:  # ImportError, AttributeError, KeyError: all "it moved"
            missing.append(f"{what} ({type(exc).__name__}: {exc})")
    if missing:
        raise IncompatibleDependency(
            "QRS cannot run with the installed qiskit packages (" + versions() + "): "
            + "; ".join(missing) + ". Install the versions setup.cfg allows "
            "(pip install -e .), or a QRS release made for these.")
