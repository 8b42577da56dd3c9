"""The ``noise-learner`` program: layer noise learned on the noisy simulator by IBM's learner.

Two payloads reach ``program_id="noise-learner"``:

* the legacy ``qiskit_ibm_runtime.noise_learner.NoiseLearner`` sends whole circuits and
  ``NoiseLearnerOptions``; the layers to learn are found here the way the legacy options
  describe (samplomatic's boxing with the options' ``twirling_strategy``, unique boxes
  ranked by how often they occur, then by their two-qubit gate count, the first
  ``max_layers_to_learn`` kept) and the result is a ``NoiseLearnerResult`` of
  ``LayerError``\\ s;
* ``qiskit_ibm_runtime.NoiseLearnerV3`` sends twirl-annotated boxes (schema ``v0.3``) and
  reads back a ``NoiseLearnerV3ResultsModel``.

Both are learned the same way, with IBM's code end to end: the client's own
``executor_noise_learner.prepare`` builds the learning program (qiskit-noise-learning's
``prepare_vanilla_program``: Pauli-twirled layer pairs at each ``layer_pair_depths``, nine
measurement bases, SPAM paths), the executor runs it like any ``executor`` program, and the
client's own post-processor (``process_vanilla_result``: curve fits and the legacy solve)
turns the bits into Pauli-Lindblad maps. That is exactly what the client-side
``executor_noise_learner.NoiseLearnerV3`` does when it submits an ``executor`` job, so the
three routes agree. IBM's analysis reports no uncertainty on gate rates, so ``rates_std``
is 0, as the client-side learner reports it.

``learn_layer_noise`` is the entry point for other server code (the legacy Estimator's PEC
and PEA): boxes in, ``PauliLindbladMap``\\ s out; ``noise_learning_results.layer_errors``
wraps them as the legacy ``LayerError``\\ s. ``run_job`` is what a job process runs
(``qrs.execution``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from . import joblog
from .circuits import check_instructions, unsupported_instructions
from .codec import decode_runtime_json, encode_result, params_object
from .errors import InvalidInput, LimitExceeded
from .noise_learning_results import encode_v3, layer_errors
from .quantum_program import describe_error
from .states import Program

if TYPE_CHECKING:
    from qiskit.circuit import CircuitInstruction, QuantumCircuit
    from qiskit.quantum_info import PauliLindbladMap
    from qiskit_ibm_runtime.options_models import NoiseLearnerV3Options

    from .executors.base import BaseExecutor
    from .validation import Limits

NOISE_LEARNER_PROGRAM = Program.NOISE_LEARNER.value

#: NoiseLearnerV3 params schemas this server reads (results are written as v0.3 models).
V3_SCHEMA_VERSIONS = ("v0.3",)

#: Legacy ``NoiseLearnerOptions`` defaults that the V3 options do not share.
LEGACY_MAX_LAYERS = 4
LEGACY_TWIRLING_STRATEGY = "active-accum"

#: Learning circuits per layer and depth (measurement bases of all two-qubit subsystems),
#: used to bound a job's shots before it runs.
BASES_PER_DEPTH = 9


@dataclass
class LearningRequest:
    """A decoded noise-learner job: the boxes to learn and how."""

    layers: list[CircuitInstruction]
    options: NoiseLearnerV3Options
    legacy: dict[str, Any] | None = None  # legacy NoiseLearnerOptions as sent; None for V3

    @property
    def estimated_shots(self) -> int:
        """Shots the learning program will take (an upper estimate, for the job limits)."""
        per_layer = BASES_PER_DEPTH * len(self.options.layer_pair_depths) + 2
        return (
            len(self.layers)
            * per_layer
            * self.options.num_randomizations
            * self.options.shots_per_randomization
        )


# ------------------------------------------------------------------ decoding
def decode_request(params: str | dict[str, Any], backend: Any) -> LearningRequest:
    """Decode either payload (see the module docstring). Raises ``InvalidInput``."""
    params = params_object(
        params,
        "(NoiseLearner's circuits and options, or NoiseLearnerV3's "
        "schema_version, instructions and options)",
    )
    if "schema_version" in params:
        return _decode_v3(params)
    return _decode_legacy(params, backend)


def _decode_v3(params: dict[str, Any]) -> LearningRequest:
    from pydantic import ValidationError

    from .compat import NOISE_LEARNER_V3_PARAMS_CONVERTERS

    version = params.get("schema_version")
    if version not in V3_SCHEMA_VERSIONS:
        raise InvalidInput(
            f"params.schema_version {version!r} is not supported; this server reads "
            f"noise-learner params {', '.join(V3_SCHEMA_VERSIONS)} (what qiskit-ibm-runtime "
            "0.51's NoiseLearnerV3 sends)."
        )
    converter = NOISE_LEARNER_V3_PARAMS_CONVERTERS[version]
    body = {key: value for key, value in params.items() if key != "version"}
    try:
        layers, options = converter.decoder(converter.model.model_validate(body))
    except ValidationError as exc:
        raise InvalidInput(f"noise-learner params are malformed: {describe_error(exc)}") from None
    except Exception as exc:  # bad base64 / QPY / options
        raise InvalidInput(
            f"noise-learner params could not be decoded: {describe_error(exc)}"
        ) from None
    if params.get("options", {}).get("post_selection", {}).get("enable"):
        joblog.emit(
            "options.post_selection ignored: NoiseLearnerV3 itself drops it "
            "(bit_flip_checks replaces it)."
        )
    return LearningRequest(layers=list(layers), options=options)


def _decode_legacy(params: dict[str, Any], backend: Any) -> LearningRequest:
    from pydantic import ValidationError
    from qiskit import QuantumCircuit
    from qiskit_ibm_runtime.options import NoiseLearnerOptions
    from qiskit_ibm_runtime.options_models import NoiseLearnerV3Options

    raw = decode_runtime_json(params)
    circuits = raw.get("circuits")
    if (
        not isinstance(circuits, list)
        or not circuits
        or not all(isinstance(c, QuantumCircuit) for c in circuits)
    ):
        raise InvalidInput(
            "params.circuits must be a non-empty list of circuits "
            "(what NoiseLearner.run(circuits) sends)."
        )
    options = dict(raw.get("options") or {})
    options.pop("support_qiskit", None)
    try:
        legacy = NoiseLearnerOptions(**options)
    except ValidationError as exc:
        raise InvalidInput(f"params.options: {_legacy_error(exc)}") from None
    except TypeError as exc:
        raise InvalidInput(f"params.options: {exc}") from None
    legacy_dict = {key: value for key, value in asdict(legacy).items() if key in options}
    v3 = {
        key: options[key]
        for key in ("shots_per_randomization", "num_randomizations", "layer_pair_depths")
        if options.get(key) is not None
    }
    check_instructions(
        circuits, frozenset(backend.target.operation_names), backend.name, "params.circuits"
    )
    strategy = options.get("twirling_strategy") or LEGACY_TWIRLING_STRATEGY
    max_layers = options.get("max_layers_to_learn", LEGACY_MAX_LAYERS)
    layers = legacy_layers(
        circuits,
        strategy,
        LEGACY_MAX_LAYERS
        if max_layers is None and "max_layers_to_learn" not in options
        else max_layers,
    )
    return LearningRequest(layers=layers, options=NoiseLearnerV3Options(**v3), legacy=legacy_dict)


def _legacy_error(exc: Exception) -> str:
    """A legacy-options pydantic error without the ``Unset`` alternatives it lists too."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return describe_error(exc)
    errors = [e for e in exc.errors() if "UnsetType" not in ".".join(map(str, e["loc"]))]
    return "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in errors[:5]) or str(exc)


def legacy_layers(
    circuits: list[QuantumCircuit], twirling_strategy: str, max_layers: int | None
) -> list[CircuitInstruction]:
    """The unique two-qubit-gate layers of ``circuits``, most frequent first.

    Boxes are drawn by samplomatic's boxing pass manager with ``twirling_strategy``
    (``active``, ``active-accum``, ``active-circuit``, ``all``); ties are broken by the
    number of two-qubit gates, as the legacy ``max_layers_to_learn`` documents.
    """
    from samplomatic.transpiler import generate_boxing_pass_manager
    from samplomatic.utils import BoxKey, find_unique_box_instructions

    manager = generate_boxing_pass_manager(
        enable_gates=True,
        enable_measures=False,
        twirling_strategy=twirling_strategy.replace("-", "_"),
    )
    counts: Counter = Counter()
    first: dict[Any, CircuitInstruction] = {}
    for circuit in circuits:
        for instruction in manager.run(circuit).data:
            if instruction.operation.name != "box" or not _two_qubit_gates(instruction):
                continue
            (unique,) = find_unique_box_instructions([instruction])
            key = BoxKey(unique)
            counts[key] += 1
            first.setdefault(key, unique)
    ranked = sorted(first, key=lambda key: (-counts[key], -_two_qubit_gates(first[key])))
    if max_layers is not None:
        ranked = ranked[:max_layers]
    return [first[key] for key in ranked]


def _two_qubit_gates(instruction: CircuitInstruction) -> int:
    return sum(
        1
        for inner in instruction.operation.blocks[0].data
        if len(inner.qubits) == 2 and inner.operation.name != "barrier"
    )


# -------------------------------------------------------------------- checks
def check_request(request: LearningRequest, backend: Any, limits: Limits) -> int:
    """Check the layers against the backend and the shots against the limits.

    Returns the estimated number of shots.
    """
    from qiskit import QuantumRegister

    register = QuantumRegister(backend.num_qubits, "q")
    supported = frozenset(backend.target.operation_names)
    for index, layer in enumerate(request.layers):
        if layer.operation.name != "box":
            raise InvalidInput(
                f"instructions[{index}] is a '{layer.operation.name}', not a "
                "box; NoiseLearnerV3 learns twirl-annotated boxes."
            )
        if any(qubit not in register for qubit in layer.qubits):
            raise InvalidInput(
                f"instructions[{index}] acts on qubits outside the backend's register "
                f"QuantumRegister({backend.num_qubits}, 'q'); transpile for the backend first."
            )
        if foreign := sorted(unsupported_instructions(layer.operation.blocks[0], supported)):
            raise InvalidInput(
                f"instructions[{index}] uses {', '.join(foreign)}, which {backend.name} does "
                "not support; transpile the circuit for the backend first."
            )
    checks = request.options.bit_flip_checks
    for where, check in (
        ("pre_circuit", checks.pre_circuit),
        ("post_circuit", checks.post_circuit),
    ):
        if check.enable and check.x_pulse_type not in supported:
            raise InvalidInput(
                f"options.bit_flip_checks.{where} needs the '{check.x_pulse_type}' pulse, which "
                f"{backend.name} does not have; turn the check off or pick another backend."
            )
    shots = request.estimated_shots
    if shots > limits.max_shots:
        raise LimitExceeded(
            f"Learning {len(request.layers)} layer(s) takes about {shots} shots "
            f"({request.options.num_randomizations} randomizations x "
            f"{request.options.shots_per_randomization} shots x {BASES_PER_DEPTH} bases x "
            f"{len(request.options.layer_pair_depths)} depths per layer); the limit per job is "
            f"{limits.max_shots} (QRS_MAX_SHOTS). Use fewer layers, depths or randomizations."
        )
    if request.options.shots_per_randomization > limits.max_pub_shots:
        raise LimitExceeded(
            f"shots_per_randomization is {request.options.shots_per_randomization}; the limit "
            f"is {limits.max_pub_shots} (QRS_MAX_PUB_SHOTS)."
        )
    return shots


# ------------------------------------------------------------------ learning
def learn_layer_noise(
    executor: BaseExecutor,
    backend_name: str,
    layers: list[CircuitInstruction],
    options: NoiseLearnerV3Options | dict | None = None,
) -> list[PauliLindbladMap]:
    """Learn the Pauli-Lindblad noise of each twirl-annotated box in ``layers``.

    Runs IBM's learning program (see the module docstring) on ``executor``'s simulator of
    ``backend_name`` and returns one map per layer, in order, each on the layer's qubits in
    ascending physical order: what the client-side Estimator's
    ``resilience.layer_noise_model = zip(layers, maps)`` expects.
    """
    from qiskit_ibm_runtime.options_models import NoiseLearnerV3Options
    from qiskit_ibm_runtime.results import QuantumProgramResult

    from .compat import noise_learner_prepare as prepare
    from .compat import noise_learner_v3_post_processor_v0_1
    from .execution import execute_program

    if not layers:
        return []
    if not isinstance(options, NoiseLearnerV3Options):
        options = NoiseLearnerV3Options(**(options or {}))
    backend = executor.metadata.get_backend(backend_name)
    program, _executor_options = prepare(instructions=layers, options=options, backend=backend)
    supported = frozenset(backend.target.operation_names)
    for item in program.items:
        if foreign := sorted(unsupported_instructions(item.circuit, supported)):
            raise InvalidInput(
                f"The learning circuits need {', '.join(foreign)}, which "
                f"{backend_name} does not have (bit_flip_checks x_pulse_type?)."
            )
    elements = sum(item.size() for item in program.items)
    joblog.emit(
        f"Learning the noise of {len(layers)} layer(s): {len(program.items)} item(s), "
        f"{elements} circuit(s) x {program.shots} shots."
    )
    result = execute_program(executor, program, {}, backend_name)
    result = QuantumProgramResult(
        list(result), metadata=result.metadata, passthrough_data=program.passthrough_data
    )
    joblog.checkpoint()
    return [
        datum.to_pauli_lindblad_map() for datum in noise_learner_v3_post_processor_v0_1(result)
    ]


# ---------------------------------------------------------------- the program
def run_job(executor: BaseExecutor, params_text: str, backend_name: str) -> str:
    """Decode, learn and encode one noise-learner job (either payload)."""
    backend = executor.metadata.get_backend(backend_name)
    request = decode_request(params_text, backend)
    joblog.emit(
        f"Noise learning on {backend_name} with the {executor.name} executor: "
        f"{len(request.layers)} layer(s), {request.options.num_randomizations} "
        f"randomizations x {request.options.shots_per_randomization} shots at depths "
        f"{list(request.options.layer_pair_depths)}."
    )
    maps = learn_layer_noise(executor, backend_name, request.layers, request.options)
    if request.legacy is not None:  # the client's NoiseLearnerResultDecoder reads this dict
        return encode_result(
            {
                "data": layer_errors(request.layers, maps, backend.num_qubits),
                "metadata": {
                    "backend": backend_name,
                    "input_options": request.legacy,
                    "learning_protocol": "lindblad",
                },
            }
        )
    return encode_v3(request, maps, backend.num_qubits)
