"""The legacy programs' options → the client-side primitives' options, with IBM's checks.

The legacy ``EstimatorV2``/``SamplerV2`` send ``resilience_level``, ``resilience.*``,
``twirling.*``, ``dynamical_decoupling.*`` and ``execution.*`` for IBM's server to apply.
QRS applies them with the engine the client ships for its client-side primitives
(``executor_estimator`` / ``executor_sampler``), so this module does two things:

* **check** them as IBM's server does, with IBM's own models of those programs' params
  (``ibm_quantum_schemas.estimator`` / ``.sampler``), then with the client-side option models
  and the conflicts their preparation refuses (PEC with ZNE, too few noise factors for an
  extrapolator). ``check_options`` runs at submission, so a bad option is a 400 naming it;
* **translate** them into ``options_models.EstimatorOptions`` / ``SamplerOptions`` (a
  ``Plan``), which the executors' ``mitigation`` module hands to the client's preparation.

Where the legacy and client-side documentations disagree, the legacy one wins:
``measure_noise_learning.num_randomizations`` defaults to 32, and
``layer_noise_learning.*`` (no client-side counterpart: the client wants a learned
``layer_noise_model``) configures the layer noise learning QRS runs before PEA or PEC.
Whatever a simulator cannot honour is listed in ``Plan.warnings`` with the reason.
"""

from __future__ import annotations

import copy
import warnings as pywarnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from .options import pop_path, prune_defaults

#: Legacy ``layer_noise_learning`` defaults (``LayerNoiseLearningOptions``' docstrings).
LAYER_LEARNING_DEFAULTS = {
    "max_layers_to_learn": 4,
    "shots_per_randomization": 128,
    "num_randomizations": 32,
    "layer_pair_depths": [0, 1, 2, 4, 16, 32],
}

#: Legacy default of ``measure_noise_learning.num_randomizations``.
TREX_RANDOMIZATIONS = 32

_TWIRLING = (
    "enable_gates",
    "enable_measure",
    "num_randomizations",
    "shots_per_randomization",
    "strategy",
)
_DD = (
    "enable",
    "sequence_type",
    "extra_slack_distribution",
    "scheduling_method",
    "skip_reset_qubits",
)
_ZNE = ("amplifier", "noise_factors", "extrapolator", "extrapolated_noise_factors")
_PEC = ("max_overhead", "noise_gain")


@dataclass
class Plan:
    """What a legacy job asks for, as the client-side primitives' options.

    ``client`` is an ``options_models.EstimatorOptions`` or ``SamplerOptions``; ``finalized``
    the same with the resilience level's defaults applied (the client's
    ``finalize_*_options``). ``rest`` holds what the Aer direct path maps itself (shots,
    precision, seeds, ``simulator.*``) plus anything unknown, which it reports as ignored.
    """

    client: Any
    finalized: Any
    rest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    layer_learning: dict[str, Any] = field(default_factory=dict)
    layer_noise_model: Any = None

    @property
    def direct(self) -> bool:
        """True when nothing is to be suppressed or mitigated: plain Aer is equivalent."""
        options = self.finalized
        resilience = getattr(options, "resilience", None)
        mitigated = resilience is not None and bool(
            resilience.measure_mitigation or resilience.zne_mitigation or resilience.pec_mitigation
        )
        return not (
            mitigated
            or options.twirling.enable_gates
            or options.twirling.enable_measure
            or options.dynamical_decoupling.enable
        )

    @property
    def needs_layer_noise(self) -> bool:
        """PEC and PEA inject noise proportional to the layers' learned noise."""
        resilience = self.finalized.resilience
        return bool(
            resilience.pec_mitigation
            or (resilience.zne_mitigation and resilience.zne.amplifier == "pea")
        )

    @property
    def seed(self) -> int | None:
        """``simulator.seed_simulator``, else the legacy ``seed_estimator``."""
        seed = (self.rest.get("simulator") or {}).get("seed_simulator")
        return seed if seed is not None else self.rest.get("seed_estimator")


def _describe(exc: Exception, where: str) -> str:
    """A pydantic error as ``where.field.path: message``, the first few of them."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return f"{where}: {exc}"
    parts = []
    for error in exc.errors()[:4]:
        path = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}.{path}: {message}" if path else f"{where}: {message}")
    return "; ".join(parts)


def _ibm_check(model: Any, options: dict[str, Any]) -> None:
    """Validate with IBM's model of the program's options (``ibm_quantum_schemas``).

    ``simulator`` (QRS's own schema checks it) and ``layer_noise_model`` arrive decoded
    into qiskit objects, while IBM's models read their wire form, so both are left out;
    unknown top-level keys are too: the runner names them in the job log instead.
    """
    from pydantic import ValidationError

    subset = {
        key: value
        for key, value in options.items()
        if key in model.model_fields and key != "simulator"
    }
    resilience = subset.get("resilience")
    if isinstance(resilience, dict) and "layer_noise_model" in resilience:
        subset["resilience"] = {k: v for k, v in resilience.items() if k != "layer_noise_model"}
    try:
        model.model_validate(subset)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, "params.options")) from None


def _take(tree: dict[str, Any], branch: tuple[str, ...], keys: tuple[str, ...]) -> dict:
    """Pop ``tree[branch...][key]`` for each key that was set; the set ones as a dict."""
    taken = {key: pop_path(tree, *branch, key) for key in keys}
    return {key: value for key, value in taken.items() if value is not None}


def _build(builder: Any, where: str = "params.options") -> Any:
    """Run a client options-model constructor; its validation errors become a 400."""
    from pydantic import ValidationError

    try:
        return builder()
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, where)) from None


def _finalize(finalize: Any, options: Any, notes: list[str]) -> Any:
    """The client's ``finalize_*_options``; its override warnings become plan warnings."""
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        finalized = finalize(options)
    notes.extend(
        str(warning.message) for warning in caught if issubclass(warning.category, UserWarning)
    )
    return finalized


def _execution_warnings(rest: dict[str, Any], notes: list[str]) -> None:
    """``execution.init_qubits`` / ``rep_delay``: what a simulator does with them."""
    if pop_path(rest, "execution", "init_qubits") is False:
        notes.append(
            "execution.init_qubits=False is not honoured: a simulator starts every "
            "shot with its qubits in |0>, as init_qubits=True does on hardware."
        )
    if (delay := pop_path(rest, "execution", "rep_delay")) is not None:
        notes.append(
            f"execution.rep_delay={delay} has no effect: a simulator starts every "
            "shot from a fresh |0> state, so there is no wait between shots to set."
        )


def _start(model: Any, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """IBM's check, then a copy of the options to consume and an empty list of warnings."""
    _ibm_check(model, options)
    return copy.deepcopy(options), []


def _suppression(rest: dict[str, Any]) -> tuple[dict, dict]:
    """Twirling and DD options that were set, popped from ``rest``."""
    return _take(rest, ("twirling",), _TWIRLING), _take(rest, ("dynamical_decoupling",), _DD)


def estimator_plan(options: dict[str, Any]) -> Plan:
    """Check and translate an ``estimator`` job's options (``resilience_level`` included)."""
    from qiskit_ibm_runtime.options_models import (
        DynamicalDecouplingOptions,
        EstimatorOptions,
        MeasureNoiseLearningOptions,
        NoiseLearnerV3Options,
        PecOptions,
        ResilienceOptions,
        TwirlingOptions,
        ZneOptions,
    )

    from ..compat import EstimatorOptionsModel, finalize_estimator_options

    rest, notes = _start(EstimatorOptionsModel, options)
    level = rest.pop("resilience_level", None)
    if level is not None and (isinstance(level, bool) or level not in (0, 1, 2)):
        raise InvalidInput(f"params.resilience_level: must be 0, 1 or 2, not {level!r}.")
    flags = _take(
        rest, ("resilience",), ("measure_mitigation", "zne_mitigation", "pec_mitigation")
    )
    zne = _take(rest, ("resilience", "zne"), _ZNE)
    pec = _take(rest, ("resilience", "pec"), _PEC)
    trex = _take(
        rest,
        ("resilience", "measure_noise_learning"),
        ("num_randomizations", "shots_per_randomization"),
    )
    learning = _take(rest, ("resilience", "layer_noise_learning"), tuple(LAYER_LEARNING_DEFAULTS))
    layer_noise_model = pop_path(rest, "resilience", "layer_noise_model")
    twirling, dd = _suppression(rest)
    _execution_warnings(rest, notes)
    if isinstance(trex.get("shots_per_randomization"), int):
        notes.append(
            f"resilience.measure_noise_learning.shots_per_randomization="
            f"{trex['shots_per_randomization']} is not honoured: the TREX "
            "calibration runs as many shots per randomization as the job's circuits "
            "(the client-side Estimator's rule; 'auto' on IBM)."
        )
    precision = {
        key: rest.pop(key)
        for key in ("default_precision", "default_shots")
        if rest.get(key) is not None
    }
    client = _build(
        lambda: EstimatorOptions(
            **precision,
            resilience_level=1 if level is None else level,
            twirling=TwirlingOptions(**twirling),
            dynamical_decoupling=DynamicalDecouplingOptions(**dd),
            resilience=ResilienceOptions(
                **flags,
                zne=ZneOptions(**zne),
                pec=PecOptions(**pec),
                measure_noise_learning=MeasureNoiseLearningOptions(
                    num_randomizations=trex.get("num_randomizations", TREX_RANDOMIZATIONS)
                ),
            ),
        )
    )
    for key, value in precision.items():  # the direct path maps these itself
        rest[key] = value
    finalized = _finalize(finalize_estimator_options, client, notes)
    learning = {**LAYER_LEARNING_DEFAULTS, **learning}
    _build(
        lambda: NoiseLearnerV3Options(
            **{key: value for key, value in learning.items() if key != "max_layers_to_learn"}
        ),
        "params.options.resilience.layer_noise_learning",
    )
    plan = Plan(client, finalized, rest, notes, learning, layer_noise_model)
    if layer_noise_model is not None:
        notes.append(
            "resilience.layer_noise_model is not used: "
            + (
                "QRS learns the layers' noise on the simulator instead "
                "(resilience.layer_noise_learning)."
                if plan.needs_layer_noise
                else "only PEA and PEC use layer noise."
            )
        )
    _check_estimator_conflicts(plan, level, flags, trex)
    return plan


def _check_estimator_conflicts(plan: Plan, level: Any, flags: dict, trex: dict) -> None:
    """The combinations the client's preparation refuses, refused at submission instead."""
    from qiskit_ibm_runtime.exceptions import IBMInputValueError

    from ..compat import normalise_extrapolator, resolve_noise_factors, validate_noise_factors

    resilience = plan.finalized.resilience
    if resilience.pec_mitigation and resilience.zne_mitigation:
        why = (
            "resilience.zne_mitigation=True"
            if flags.get("zne_mitigation")
            else f"resilience_level={level}, which turns on resilience.zne_mitigation"
        )
        raise InvalidInput(
            f"params.options.resilience.pec_mitigation: PEC and ZNE cannot be "
            f"combined, and this job asks for PEC with {why}. Set "
            "resilience.zne_mitigation=False or pec_mitigation=False."
        )
    if trex and not resilience.measure_mitigation:
        raise InvalidInput(
            "params.options.resilience.measure_noise_learning: options are set, "
            "but measure_mitigation is off (resilience_level 0 or "
            "measure_mitigation=False)."
        )
    if resilience.zne_mitigation:
        try:
            noise_factors, _ = resolve_noise_factors(resilience.zne)
            validate_noise_factors(
                noise_factors, normalise_extrapolator(resilience.zne.extrapolator)
            )
        except IBMInputValueError as exc:
            raise InvalidInput(f"params.options.resilience.zne: {exc}") from None


def sampler_plan(options: dict[str, Any]) -> Plan:
    """Check and translate a ``sampler`` job's options (twirling, DD, execution)."""
    from qiskit_ibm_runtime.exceptions import IBMInputValueError
    from qiskit_ibm_runtime.options_models import (
        DynamicalDecouplingOptions,
        SamplerExecutionOptions,
        SamplerOptions,
        TwirlingOptions,
    )

    from ..compat import SamplerOptionsModel, finalize_sampler_options, validate_meas_type_twirling

    rest, notes = _start(SamplerOptionsModel, options)
    twirling, dd = _suppression(rest)
    _execution_warnings(rest, notes)
    meas_type = (rest.get("execution") or {}).get("meas_type", "classified")
    client = _build(
        lambda: SamplerOptions(
            twirling=TwirlingOptions(**twirling),
            dynamical_decoupling=DynamicalDecouplingOptions(**dd),
            execution=SamplerExecutionOptions(meas_type=meas_type),
        )
    )
    finalized = _finalize(finalize_sampler_options, client, notes)
    try:  # the client's rule: twirled measurements need bits to undo the flips
        validate_meas_type_twirling(meas_type, finalized.twirling.enable_measure)
    except IBMInputValueError as exc:
        raise InvalidInput(f"params.options.execution.meas_type: {exc}") from None
    return Plan(client, finalized, rest, notes)


def preload() -> None:
    """Import the client modules this module and ``mitigation`` use (see ``qrs.__init__``)."""
    import importlib

    for name in (
        "ibm_quantum_schemas.estimator.version_0_1",
        "ibm_quantum_schemas.sampler.version_0_1",
        "qiskit_ibm_runtime.options_models",
        "qiskit_ibm_runtime.executor_estimator.prepare",
        "qiskit_ibm_runtime.executor_sampler.prepare",
        "qiskit_ibm_runtime.executor_noise_learner.prepare",
        "qiskit_ibm_runtime.decoders.executor.decoder",
        "qiskit_ibm_runtime.decoders.executor_estimator.decoder",
        "qiskit_ibm_runtime.decoders.executor_sampler.decoder",
        "qiskit_ibm_runtime.decoders.executor_noise_learner.decoder",
    ):
        importlib.import_module(name)


def plan_for(program_id: str, options: dict[str, Any]) -> Plan:
    """The plan of a ``sampler`` or ``estimator`` job."""
    return (sampler_plan if program_id == "sampler" else estimator_plan)(options)


def check_options(
    program_id: str, options: dict[str, Any], configuration: dict[str, Any] | None = None
) -> None:
    """Refuse at submission, naming the option, what IBM's server would refuse.

    ``configuration`` is the backend's: ``execution.rep_delay`` must lie in its
    ``rep_delay_range`` (microseconds there, seconds in the option) on a backend whose
    ``dynamic_reprate_enabled`` is true, as IBM checks.
    """
    plan_for(program_id, options)
    delay = (options.get("execution") or {}).get("rep_delay")
    if delay is None or configuration is None:
        return
    low, high = (v * 1e-6 for v in configuration.get("rep_delay_range") or (0.0, float("inf")))
    if not configuration.get("dynamic_reprate_enabled"):
        raise InvalidInput(
            "params.options.execution.rep_delay: this backend does not support "
            "a dynamic repetition delay (dynamic_reprate_enabled is false)."
        )
    if not low <= float(delay) <= high:
        raise InvalidInput(
            f"params.options.execution.rep_delay: {delay} s is outside the "
            f"backend's rep_delay_range [{low:g}, {high:g}] s."
        )


def leftovers(rest: dict[str, Any]) -> dict[str, Any]:
    """Options nobody consumed (unknown or not simulated), for the job log."""
    return prune_defaults(rest)
