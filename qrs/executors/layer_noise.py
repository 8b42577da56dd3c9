"""Layer noise for PEA and PEC, learned on the noisy simulator before the job's circuits.

IBM's legacy Estimator learns the Pauli-Lindblad noise of each unique entangling layer
inside the job (``resilience.layer_noise_learning.*``). The client-side Estimator leaves
that to a separate ``NoiseLearnerV3`` job; QRS runs the same steps inside the legacy job,
with the client's own code: ``Estimator.find_unique_layers`` finds the boxed layers,
``executor_noise_learner.prepare`` builds the learning program (qiskit-noise-learning), the
executor runs it like any program, and the client's noise-learner decoder turns the
counts into one ``PauliLindbladMap`` per layer. What it costs: per layer,
``len(layer_pair_depths) × 9 × num_randomizations`` circuits of
``shots_per_randomization`` shots each (about 1,700 circuits × 128 shots with the
defaults), simulated with the backend's noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import joblog

if TYPE_CHECKING:
    from .legacy_options import Plan

#: A callable that runs a client-prepared program and returns the client-decoded result.
RunProgram = Callable[[Any, Any], Any]


def _two_qubit_gates(layer: Any) -> int:
    """Two-qubit gates in a boxed layer: IBM's tie-break when layers must be dropped."""
    return sum(1 for instruction in layer.operation.body.data if len(instruction.qubits) == 2)


def select_layers(layers: list[Any], limit: int | None, notes: list[str]) -> list[Any]:
    """At most ``limit`` layers (``max_layers_to_learn``; ``None`` for all), largest first.

    IBM ranks layers by how often they occur, then by their two-qubit gates; the boxed
    layers the client's ``find_unique_layers`` returns carry no count, so QRS ranks by
    gates alone. Layers left out are treated as noiseless, as IBM documents.
    """
    if limit is None or len(layers) <= limit:
        return list(layers)
    kept = sorted(layers, key=_two_qubit_gates, reverse=True)[:limit]
    notes.append(
        f"resilience.layer_noise_learning.max_layers_to_learn={limit}: "
        f"{len(layers) - limit} of {len(layers)} unique layers were not learned "
        "and are not mitigated (ranked by two-qubit gates)."
    )
    return kept


def learn(pubs: list[Any], plan: Plan, backend: Any, run_program: RunProgram) -> list[tuple]:
    """``[(boxed layer, PauliLindbladMap), ...]`` for the pubs' unique layers.

    ``backend`` is the fake backend object (the learning circuits are built for its
    coupling map); ``run_program(program, executor_options)`` runs the learning program.
    """
    from qiskit_ibm_runtime.executor_estimator import Estimator
    from qiskit_ibm_runtime.options_models import NoiseLearnerV3Options
    from qiskit_ibm_runtime.quantum_program import QuantumProgram

    from ..compat import ClientSideNoiseLearnerResultDecoder, set_semantic_role
    from ..compat import noise_learner_prepare as prepare

    options = plan.layer_learning
    layers = Estimator(mode=backend, options=plan.client).find_unique_layers(pubs)
    layers = select_layers(layers, options["max_layers_to_learn"], plan.warnings)
    if not layers:
        return []
    learner_options = NoiseLearnerV3Options(
        num_randomizations=options["num_randomizations"],
        shots_per_randomization=options["shots_per_randomization"],
        layer_pair_depths=list(options["layer_pair_depths"]),
    )
    program, executor_options = prepare(layers, learner_options, backend)
    program = QuantumProgram.from_(program)
    set_semantic_role(program, "noise_learner_v3")
    circuits = sum(item.size() for item in program.items)
    joblog.emit(
        f"Learning the noise of {len(layers)} layer(s): {circuits} circuits x "
        f"{program.shots} shots (resilience.layer_noise_learning)."
    )
    learned = ClientSideNoiseLearnerResultDecoder.decode(run_program(program, executor_options))
    return list(zip(layers, learned.to_pauli_lindblad_maps()))
