"""IBM's error suppression and mitigation for the legacy programs, on the client's engine.

A legacy ``estimator`` or ``sampler`` job that asks for TREX, ZNE, PEA, PEC, twirling or
dynamical decoupling runs as the client-side primitives would run it, with their code:

1. ``legacy_options`` translates the job's options into the client-side options models;
2. for PEA/PEC, ``layer_noise`` learns the layers' noise on the simulator first;
3. the client's ``executor_estimator.prepare`` / ``executor_sampler.prepare`` builds a
   ``QuantumProgram`` (qiskit-mitigation and samplomatic: twirls, folded gates, injected
   noise, TREX calibration, DD);
4. the program travels the ``executor`` program's wire path — the client's params
   encoder, ``quantum_program.decode_program``, the executor's ``execute_program``, the
   result encoder and the client's ``ExecutorResultDecoder`` — so it is run exactly as
   an ``executor`` job from the client-side primitive would be;
5. the client's post-processor (the decoder for the program's semantic role) turns the
   bits into expectation values or counts, and ``legacy_results`` gives them IBM's legacy
   shapes and metadata.

A job that asks for none of it (resilience level 0, no twirling, no DD) takes the
executor's direct Aer path, which is equivalent and cheaper. Either way every option QRS
cannot honour is named in the job log and in the result's ``metadata["warnings"]``.
"""

from __future__ import annotations

import warnings as pywarnings
from collections.abc import Callable
from typing import Any

from .. import joblog
from ..codec import coerce_pubs
from ..validation import Limits
from . import layer_noise, legacy_results, qubit_subset
from .legacy_options import Plan, estimator_plan, sampler_plan
from .options import MappedOptions, estimator_options, sampler_options

#: Runs mapped options on the executor's direct Aer path: (pubs, mapped, backend) → result.
Direct = Callable[[list[Any], MappedOptions, str], Any]

#: ``simulator.*`` options the executor honours per job, forwarded to its programs.
SIMULATOR_KEYS = ("seed_simulator", "noise_model", "coupling_map", "basis_gates")


def _announce(plan: Plan, mapped: MappedOptions) -> None:
    """Add what the simulator ignores to the plan's warnings; put each in the job log."""
    if mapped.ignored:
        plan.warnings.append(f"Options with no effect on the simulator: {mapped.ignored}")
    for line in plan.warnings:
        joblog.emit(f"Warning: {line}")


def execute_estimator(
    executor: Any, pubs: list[Any], options: dict[str, Any], backend_name: str, direct: Direct
) -> Any:
    """An ``estimator`` job: the direct path when equivalent, else the client's engine."""
    plan = estimator_plan(options)
    mapped = estimator_options(plan.rest)
    if plan.direct:
        _announce(plan, mapped)
        return legacy_results.direct_estimator_result(direct(pubs, mapped, backend_name), plan)
    mapped.ignored.pop("default_precision", None)
    _announce(plan, mapped)
    return run_estimator(executor, pubs, plan, backend_name)


def execute_sampler(
    executor: Any, pubs: list[Any], options: dict[str, Any], backend_name: str, direct: Direct
) -> Any:
    """A ``sampler`` job: the direct path unless it asks for twirling or DD."""
    plan = sampler_plan(options)
    mapped = sampler_options(plan.rest)
    _announce(plan, mapped)
    if plan.direct:
        result = direct(pubs, mapped, backend_name)
        if plan.warnings:
            result.metadata["warnings"] = list(plan.warnings)
        return result
    return run_sampler(executor, pubs, plan, mapped, backend_name)


def _simulator_overrides(plan: Plan) -> dict[str, Any]:
    """The job's ``simulator.*`` settings (and legacy seed) for the programs it runs."""
    simulator = plan.rest.get("simulator") or {}
    overrides = {key: simulator[key] for key in SIMULATOR_KEYS if simulator.get(key) is not None}
    if plan.seed is not None:
        overrides["seed_simulator"] = int(plan.seed)
    return overrides


def _on_active_qubits(pubs: list[Any], backend: Any) -> tuple[list[Any], Any, list[int]]:
    """Pubs and backend cut to the qubits the job uses (``qubit_subset``), and those qubits."""
    subset = qubit_subset.active_qubits(pubs)
    if len(subset) == backend.num_qubits:
        return pubs, backend, subset
    return (
        [qubit_subset.restrict_pub(pub, subset) for pub in pubs],
        qubit_subset.restrict_backend(backend, subset),
        subset,
    )


def run_program(
    executor: Any,
    plan: Plan,
    backend_name: str,
    program: Any,
    executor_options: Any,
    subset: list[int] | None = None,
) -> Any:
    """Run a client-prepared program as an ``executor`` job; the client-decoded result.

    The program is checked against the server's limits (``QRS_MAX_SHOTS`` ...) first:
    ZNE, PEC (up to ``pec.max_overhead`` times the shots) and layer noise learning
    multiply a job's circuits, and an ``executor`` job of that size would be refused.
    """
    from .. import quantum_program
    from ..compat import QUANTUM_PROGRAM_PARAMS_CONVERTERS, ExecutorResultDecoder
    from ..execution import execute_program

    version = quantum_program.SCHEMA_VERSIONS[0]
    params = QUANTUM_PROGRAM_PARAMS_CONVERTERS[version].encoder(program, executor_options)
    decoded = quantum_program.decode_program(params.model_dump(mode="json"))
    backend = executor.metadata.get_backend(backend_name)
    if subset is not None:  # prepared on the job's qubits: run it at their physical places
        qubit_subset.embed_program(decoded.program, subset, backend.num_qubits)
    config = executor.config  # the limits an executor job has bound this one too
    quantum_program.check_program(decoded, Limits.from_config(config, backend))
    options = dict(decoded.options)
    options["simulator"] = {**(options.get("simulator") or {}), **_simulator_overrides(plan)}
    result = execute_program(executor, decoded.program, options, backend_name)
    return ExecutorResultDecoder.decode(quantum_program.encode_result(result, decoded))


def _prepare(prepare: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The client's ``prepare``: its option-override warnings are already in the plan."""
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", UserWarning)
        return prepare(*args, **kwargs)


def _precision_groups(pubs: list[Any]) -> dict[float | None, list[int]]:
    """Pub indices by precision: one program per precision, as the client requires."""
    groups: dict[float | None, list[int]] = {}
    for index, pub in enumerate(pubs):
        groups.setdefault(pub.precision, []).append(index)
    return groups


def _tasks(program: Any) -> list[dict[str, Any]]:
    """qiskit-mitigation's passthrough entry of each pub (the TREX calibration left out)."""
    entries = program.passthrough_data.get("qiskit_mitigation") or []
    return [entry for entry in entries if entry.get("mitigation") != "trex"]


def _randomizations(program: Any, task: dict[str, Any]) -> int:
    """How many randomizations ran for a pub: the leading axis of its samplex item, after
    the noise-factor axis for PEA (gate folding runs one item per noise factor)."""
    from samplomatic.quantum_program import SamplexItem

    item = program.items[task.get("program_item_index", 0)]
    axis = 1 if task.get("mitigation") == "pea" else 0
    return int(item.shape[axis]) if isinstance(item, SamplexItem) and item.shape else 1


def run_estimator(executor: Any, pubs: list[Any], plan: Plan, backend_name: str) -> Any:
    """Mitigated ``estimator`` pubs → a legacy ``PrimitiveResult`` of ``EstimatorPubResult``."""
    from qiskit.primitives import PrimitiveResult

    from ..compat import ClientSideEstimatorDecoder, set_semantic_role
    from ..compat import estimator_prepare as prepare

    originals = coerce_pubs("estimator", pubs, None)
    coerced, backend, subset = _on_active_qubits(
        originals, executor.metadata.get_backend(backend_name)
    )

    def run(program: Any, executor_options: Any) -> Any:
        return run_program(executor, plan, backend_name, program, executor_options, subset)

    options, learned = plan.client, 0
    if plan.needs_layer_noise:
        known = len(plan.warnings)
        model = layer_noise.learn(coerced, plan, backend, run)
        for line in plan.warnings[known:]:
            joblog.emit(f"Warning: {line}")
        options = options.model_copy(deep=True)
        options.resilience.layer_noise_model = model
        learned = len(model)
    results: list[Any] = [None] * len(coerced)
    for precision, indices in _precision_groups(coerced).items():
        joblog.checkpoint()
        group = [coerced[index] for index in indices]
        # add_tags: tag each box uniquely, as the client does in local (simulator) mode,
        # so injected noise is drawn independently for every layer instance.
        program, executor_options = _prepare(
            prepare, group, options, None, add_tags=True, backend=backend
        )
        set_semantic_role(program, "estimator_v2")
        joblog.emit(
            f"Running {len(program.items)} mitigation item(s) for {len(group)} pub(s) "
            f"({sum(item.size() for item in program.items)} circuits x "
            f"{program.shots} shots)."
        )
        decoded = ClientSideEstimatorDecoder.decode(run(program, executor_options))
        shots = int(decoded.metadata["shots"])
        for index, pub_result, task in zip(indices, decoded, _tasks(program)):
            results[index] = _estimator_pub(
                plan, originals[index], pub_result, task, program, shots, precision, learned
            )
    return PrimitiveResult(results, metadata=legacy_results.estimator_metadata(plan))


def _estimator_pub(
    plan: Plan,
    pub: Any,
    pub_result: Any,
    task: dict[str, Any],
    program: Any,
    shots: int,
    precision: float | None,
    learned: int,
) -> Any:
    """One client-side pub result in the legacy shape, with IBM's pub metadata."""
    resilience: dict[str, Any] = {}
    if plan.finalized.resilience.zne_mitigation:
        chosen = pub_result.metadata.get("resilience", {}).get("zne", {}).get("extrapolators")
        resilience = legacy_results.zne_pub_resilience(plan, chosen)
    elif plan.finalized.resilience.pec_mitigation:
        resilience = legacy_results.pec_pub_resilience(task.get("pec_gamma", 1.0), learned)
    metadata = legacy_results.pub_metadata(
        pub, shots, precision, _randomizations(program, task), resilience
    )
    return legacy_results.estimator_pub_result(dict(pub_result.data.items()), pub.shape, metadata)


def run_sampler(
    executor: Any, pubs: list[Any], plan: Plan, mapped: MappedOptions, backend_name: str
) -> Any:
    """Twirled and/or DD ``sampler`` pubs → a legacy ``PrimitiveResult`` of counts."""
    from qiskit.primitives import PrimitiveResult

    from ..compat import ClientSideSamplerResultDecoder, set_semantic_role
    from ..compat import sampler_prepare as prepare

    default_shots = mapped.primitive.get("default_shots", 4096)
    coerced, backend, subset = _on_active_qubits(
        coerce_pubs("sampler", pubs, default_shots), executor.metadata.get_backend(backend_name)
    )
    results: list[Any] = [None] * len(coerced)
    groups: dict[int, list[int]] = {}
    for index, pub in enumerate(coerced):  # the client runs one shot count per program
        groups.setdefault(int(pub.shots), []).append(index)
    for shots, indices in groups.items():
        joblog.checkpoint()
        group = [coerced[index] for index in indices]
        program, executor_options = _prepare(
            prepare, group, plan.client, shots, add_tags=True, backend=backend
        )
        set_semantic_role(program, "sampler_v2")
        decoded = ClientSideSamplerResultDecoder.decode(
            run_program(executor, plan, backend_name, program, executor_options, subset)
        )
        for index, item, pub_result in zip(indices, program.items, decoded):
            randomizations = (
                item.shape[0]
                if plan.finalized.twirling.enable_gates or plan.finalized.twirling.enable_measure
                else 1
            )
            results[index] = legacy_results.sampler_pub_result(
                pub_result, shots, randomizations, plan.finalized.execution.meas_type
            )
    metadata = {**legacy_results.suppression_metadata(plan)}
    return PrimitiveResult(results, metadata=metadata)
