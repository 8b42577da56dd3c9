"""Running the client's QuantumPrograms on any executor's Sampler primitive.

What the client's own reference (``fake_provider/executor/run_quantum_program.py``) does:
draw each samplex's randomizations (twirls, noise injections) on the classical side, bind
them into the template circuit, sample every element ``shots`` times, and return each
classical register as little-endian booleans of shape ``(*item.shape, shots, creg.size)``
next to the samplex's other outputs (measurement flips, signs) that the client needs to
undo the twirls. ``run_on_sampler`` is ``BaseExecutor.execute_program``'s default, so
local, GPU, Dask and plug-in executors all run programs; ``random_result`` is the dry run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import joblog
from ..compat import broadcast_sample
from . import iq
from .base import JobRefused

if TYPE_CHECKING:
    from samplomatic.quantum_program import QuantumProgram, QuantumProgramResult

#: Decimal places angles are rounded to at multiples of pi/2 (the reference's default
#: ``SimulatorOptions.angle_decimals``): keeps nominally Clifford twirls Clifford.
ANGLE_DECIMALS = 5


def _round_to_clifford(values: np.ndarray) -> np.ndarray:
    """Round angles at multiples of pi/2 so float drift cannot spoil a Clifford circuit."""
    return np.round(values / (np.pi / 2), decimals=ANGLE_DECIMALS) * (np.pi / 2)


def _item_inputs(item: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """An item's parameter values ``(*shape, num_parameters)`` and its samplex outputs."""
    from samplomatic.quantum_program import SamplexItem

    if isinstance(item, SamplexItem):
        outputs = broadcast_sample(item.samplex, item.samplex_arguments, item.shape, rng)
        values = outputs.pop("parameter_values", None)
    else:
        outputs, values = {}, item.circuit_arguments
    if values is None or item.circuit.num_parameters == 0:
        values = np.empty((*item.shape, 0))
    return _round_to_clifford(np.asarray(values, dtype=float)), outputs


def _chunk_timing(program: QuantumProgram, start: datetime, stop: datetime) -> list[Any]:
    """One chunk covering every element of every item (the job ran as one shot loop)."""
    from samplomatic.quantum_program import ChunkPart, ChunkSpan

    return [
        ChunkSpan(
            start,
            stop,
            [ChunkPart(i, math.prod(item.shape)) for i, item in enumerate(program.items)],
        )
    ]


#: ``options["simulator"]`` keys ``run_on_sampler`` forwards to ``execute_sampler``.
SAMPLER_SIMULATOR_KEYS = ("seed_simulator", "noise_model", "coupling_map", "basis_gates")


def twirls_gates(program: QuantumProgram) -> bool:
    """Whether some item's samplex draws gate twirls (its gate noise then averages to a
    Pauli channel: the planner may use the Pauli approximation, ``QRS_NOISE_APPROXIMATION``)."""
    from ..compat import TwirlSamplingNode

    return any(
        isinstance(node, TwirlSamplingNode)
        for item in program.items
        if getattr(item, "samplex", None) is not None
        for node in item.samplex.graph.nodes()
    )


def run_on_sampler(
    execute_sampler: Callable[..., Any],
    program: QuantumProgram,
    backend_name: str,
    options: dict[str, Any] | None = None,
) -> QuantumProgramResult:
    """Run ``program`` through a Sampler-pub executor: one pub per item, shots per element.

    Works for any executor, so local, GPU, Dask and plug-in executors all run programs.
    ``options["simulator"]["seed_simulator"]`` seeds both the samplex draws and Aer (the
    client's ``SimulatorOptions.seed_simulator``); a per-job ``noise_model``,
    ``coupling_map`` or ``basis_gates`` there (the legacy programs' ``simulator.*``) is
    handed to ``execute_sampler`` too.
    """
    from qiskit_ibm_runtime.results import QuantumProgramResult

    simulator = (options or {}).get("simulator") or {}
    passed = {
        key: simulator[key] for key in SAMPLER_SIMULATOR_KEYS if simulator.get(key) is not None
    }
    start = datetime.now(timezone.utc)
    rng = np.random.default_rng(passed.get("seed_simulator"))
    pubs, extras = [], []
    for item in program.items:
        joblog.checkpoint()
        values, outputs = _item_inputs(item, rng)
        pubs.append((item.circuit, values, program.shots))
        extras.append(outputs)
    sampler_options: dict[str, Any] = {"default_shots": program.shots}
    if passed:
        sampler_options["simulator"] = passed
    if program.meas_level != "classified":  # emulated IQ points (iq.py)
        sampler_options["execution"] = {"meas_type": "kerneled"}
    result = execute_sampler(pubs, sampler_options, backend_name)
    data = []
    for outputs, pub_result in zip(extras, result):
        registers: dict[str, np.ndarray] = {}
        for name, array in pub_result.data.items():
            if program.meas_level == "classified":
                registers[name] = array.to_bool_array(order="little")
            elif isinstance(array, np.ndarray) and np.iscomplexobj(array):
                registers.update(iq.program_register(name, array, program.meas_level))
            else:
                raise JobRefused(
                    f"meas_level={program.meas_level!r} needs IQ data, which "
                    "this executor's execute_sampler does not return."
                )
        data.append({**outputs, **registers})
    program_result = QuantumProgramResult(data)
    program_result.metadata.chunk_timing = _chunk_timing(
        program, start, datetime.now(timezone.utc)
    )
    return program_result


def random_result(program: QuantumProgram) -> QuantumProgramResult:
    """A dry run: every register's bits drawn uniformly, shapes as a real run's, no simulation.

    Samplex outputs are drawn for real (they are classical and cheap) so the client's
    post-processing sees consistent twirl data.
    """
    from qiskit_ibm_runtime.results import QuantumProgramResult

    start = datetime.now(timezone.utc)
    rng = np.random.default_rng()
    data = []
    for item in program.items:
        joblog.checkpoint()
        _, outputs = _item_inputs(item, rng)
        for creg in item.circuit.cregs:
            size = (*item.shape, program.shots, creg.size)
            if program.meas_level == "classified":
                outputs[creg.name] = rng.integers(0, 2, size=size, dtype=np.uint8).astype(bool)
            else:
                points = rng.standard_normal(size) + 1j * rng.standard_normal(size)
                outputs.update(iq.program_register(creg.name, points, program.meas_level))
        data.append(outputs)
    program_result = QuantumProgramResult(data)
    program_result.metadata.chunk_timing = _chunk_timing(
        program, start, datetime.now(timezone.utc)
    )
    return program_result
