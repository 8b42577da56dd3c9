"""Every private or internal API of qiskit, qiskit-ibm-runtime, qiskit-aer, samplomatic and
ibm-quantum-schemas that QRS uses.

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
``QuantumProgram._semantic_role``                      the client's mitigation programs
``NoiseModel._custom_noise_passes``, ``._func``        delay relaxation, memoized
``INTERNAL``: the client's ``executor_*``,             legacy options and results on the
  ``decoders`` and ``noise_learner_v3`` modules,         client's own mitigation, noise
  the wire schemas, samplomatic's samplex nodes          learning, result encoding
=====================================================  ==================================

Names in ``INTERNAL`` are imported from here (``from qrs.compat import
finalize_estimator_options``): the module resolves them lazily, on first use, so that
importing ``qrs.compat`` stays cheap, and ``check()`` resolves all of them.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as dist_metadata
from typing import Any

#: Packages whose versions a compatibility failure names.
PACKAGES = (
    "qiskit",
    "qiskit-ibm-runtime",
    "qiskit-aer",
    "samplomatic",
    "ibm-quantum-schemas",
)

#: Error tables of a NoiseModel, by attribute (all private).
_NOISE_TABLES = (
    "_default_quantum_errors",
    "_default_readout_error",
    "_local_quantum_errors",
    "_local_readout_errors",
)
#: Names ``payload_guard`` reads from ``qiskit.qpy.formats``.
_QPY_NAMES = (
    "FILE_HEADER",
    "FILE_HEADER_PACK",
    "FILE_HEADER_SIZE",
    "FILE_HEADER_V10",
    "FILE_HEADER_V10_PACK",
    "FILE_HEADER_V10_SIZE",
    "CIRCUIT_TABLE_ENTRY_PACK",
    "CIRCUIT_TABLE_ENTRY_SIZE",
    "CIRCUIT_HEADER_V12",
    "CIRCUIT_HEADER_V12_PACK",
    "CIRCUIT_HEADER_V12_SIZE",
    "CIRCUIT_HEADER_V2",
    "CIRCUIT_HEADER_V2_PACK",
    "CIRCUIT_HEADER_V2_SIZE",
)


_RUNTIME = "qiskit_ibm_runtime"
#: Internal names of the client and its companions, by the name QRS imports them under:
#: ``(module, attribute)``. None is part of a package's documented API.
INTERNAL: dict[str, tuple[str, str]] = {
    # The client-side Estimator/Sampler/NoiseLearner machinery (legacy options mapped on it).
    "estimator_prepare": (f"{_RUNTIME}.executor_estimator.prepare", "prepare"),
    "normalise_extrapolator": (f"{_RUNTIME}.executor_estimator.prepare", "normalise_extrapolator"),
    "finalize_estimator_options": (
        f"{_RUNTIME}.executor_estimator.finalize_options",
        "finalize_estimator_options",
    ),
    "resolve_noise_factors": (f"{_RUNTIME}.executor_estimator.utils", "resolve_noise_factors"),
    "validate_noise_factors": (f"{_RUNTIME}.executor_estimator.utils", "validate_noise_factors"),
    "sampler_prepare": (f"{_RUNTIME}.executor_sampler.prepare", "prepare"),
    "finalize_sampler_options": (
        f"{_RUNTIME}.executor_sampler.finalize_options",
        "finalize_sampler_options",
    ),
    "validate_meas_type_twirling": (
        f"{_RUNTIME}.executor_sampler.utils",
        "validate_meas_type_twirling",
    ),
    "noise_learner_prepare": (f"{_RUNTIME}.executor_noise_learner.prepare", "prepare"),
    "ExtrapolatorType": (f"{_RUNTIME}.options.zne_options", "ExtrapolatorType"),
    # The client's result decoders and post-processors.
    "ExecutorResultDecoder": (f"{_RUNTIME}.decoders.executor.decoder", "ExecutorResultDecoder"),
    "ClientSideEstimatorDecoder": (
        f"{_RUNTIME}.decoders.executor_estimator.decoder",
        "ClientSideEstimatorDecoder",
    ),
    "ClientSideSamplerResultDecoder": (
        f"{_RUNTIME}.decoders.executor_sampler.decoder",
        "ClientSideSamplerResultDecoder",
    ),
    "ClientSideNoiseLearnerResultDecoder": (
        f"{_RUNTIME}.decoders.executor_noise_learner.decoder",
        "ClientSideNoiseLearnerResultDecoder",
    ),
    "noise_learner_v3_post_processor_v0_1": (
        f"{_RUNTIME}.decoders.executor_noise_learner.post_processor_v0_1",
        "noise_learner_v3_post_processor_v0_1",
    ),
    # Params converters: the wire format of executor and NoiseLearnerV3 jobs.
    "QUANTUM_PROGRAM_PARAMS_CONVERTERS": (
        f"{_RUNTIME}.quantum_program.params_converters",
        "QUANTUM_PROGRAM_PARAMS_CONVERTERS",
    ),
    "NOISE_LEARNER_V3_PARAMS_CONVERTERS": (
        f"{_RUNTIME}.noise_learner_v3.params_converters",
        "NOISE_LEARNER_V3_PARAMS_CONVERTERS",
    ),
    "noise_learner_v3_result_to_0_3": (
        f"{_RUNTIME}.noise_learner_v3.converters.version_0_3",
        "noise_learner_v3_result_to_0_3",
    ),
    # Wire schemas (pydantic models) the client validates against.
    "EstimatorOptionsModel": ("ibm_quantum_schemas.estimator.version_0_1", "OptionsModel"),
    "SamplerOptionsModel": ("ibm_quantum_schemas.sampler.version_0_1", "OptionsModel"),
    "CompressedTensorModel": ("ibm_quantum_schemas.common", "CompressedTensorModel"),
    "SchemaChunkPart": ("ibm_quantum_schemas.executor.version_2_0", "ChunkPart"),
    "SchemaChunkSpan": ("ibm_quantum_schemas.executor.version_2_0", "ChunkSpan"),
    "ItemMetadataModel": ("ibm_quantum_schemas.executor.version_2_0", "ItemMetadataModel"),
    "MetadataModel": ("ibm_quantum_schemas.executor.version_2_0", "MetadataModel"),
    "QuantumProgramResultItemModel": (
        "ibm_quantum_schemas.executor.version_2_0",
        "QuantumProgramResultItemModel",
    ),
    "QuantumProgramResultModel": (
        "ibm_quantum_schemas.executor.version_2_0",
        "QuantumProgramResultModel",
    ),
    # samplomatic's samplex internals.
    "TwirlSamplingNode": ("samplomatic.samplex.nodes", "TwirlSamplingNode"),
}


def __getattr__(name: str) -> Any:
    """``from qrs.compat import <a name of INTERNAL>``: imported on first use (PEP 562)."""
    try:
        module, attribute = INTERNAL[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


class IncompatibleDependency(RuntimeError):
    """An installed qiskit package lacks an API QRS relies on (raised at start-up)."""


def broadcast_sample(samplex: Any, arguments: Any, shape: tuple[int, ...], rng: Any) -> Any:
    """The client reference's samplex draw over an item's broadcast axes."""
    from qiskit_ibm_runtime.fake_provider.executor.broadcast_sample import (
        broadcast_sample as sample,
    )

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


def set_semantic_role(program: Any, role: str) -> None:
    """Mark a client QuantumProgram as the ``role`` program (``estimator_v2``, ...).

    The client's own Estimator/Sampler set this private field; its decoders dispatch on it.
    """
    program._semantic_role = role


def noise_passes(noise_model: Any) -> list[Any]:
    """The custom noise passes of an Aer NoiseModel (delay relaxation of device models)."""
    return list(getattr(noise_model, "_custom_noise_passes", None) or [])


def set_noise_passes(noise_model: Any, passes: list[Any]) -> None:
    """Replace a NoiseModel's custom noise passes (Aer has no public setter)."""
    noise_model._custom_noise_passes = passes


def noise_pass_function(noise_pass: Any) -> Callable[..., Any]:
    """The error function of an Aer ``LocalNoisePass``."""
    return noise_pass._func


def set_noise_pass_function(noise_pass: Any, func: Callable[..., Any]) -> None:
    """Replace a ``LocalNoisePass``'s error function (to memoize it)."""
    noise_pass._func = func


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
        return __getattr__("QUANTUM_PROGRAM_PARAMS_CONVERTERS")["v2.0"]

    def role() -> object:
        from qiskit_ibm_runtime import QuantumProgram

        return QuantumProgram(shots=1)._semantic_role

    def passes() -> object:
        from qiskit_aer.noise import NoiseModel
        from qiskit_aer.noise.passes import LocalNoisePass

        model = NoiseModel()
        model._custom_noise_passes  # noqa: B018 (the probe is the attribute lookup)
        return LocalNoisePass(lambda *_: None)._func

    internal = [
        (f"{module}.{attribute}", lambda name=name: __getattr__(name))
        for name, (module, attribute) in INTERNAL.items()
    ]
    return internal + [
        ("qiskit_ibm_runtime QuantumProgram._semantic_role", role),
        ("qiskit_aer NoiseModel._custom_noise_passes, LocalNoisePass._func", passes),
        ("qiskit_ibm_runtime.fake_provider.executor.broadcast_sample", samplex),
        ("qiskit_ibm_runtime FakeBackendV2._load_json", load_json),
        ("qiskit_aer NoiseModel error tables (" + ", ".join(_NOISE_TABLES) + ")", tables),
        ("qiskit_aer AerSimulator._options.update_options", options),
        ("qiskit.qpy.formats header layouts", qpy),
        ("qiskit_ibm_runtime.quantum_program.params_converters v2.0", converters),
    ]


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
            "QRS cannot run with the installed qiskit packages ("
            + versions()
            + "): "
            + "; ".join(missing)
            + ". Install the versions setup.cfg allows "
            "(pip install -e .), or a QRS release made for these."
        )
