"""Noise models made cheap for Aer: cut down to the qubits a job touches, errors compacted.

Aer converts the whole noise model to C++ on every run. For a calibrated device that is
the dominant cost of a small job: tens of milliseconds for 5 qubits, seconds for 127.
Two rewrites give the same channels at a fraction of that cost:

* errors attached to qubits a circuit never uses can never fire, so they are dropped;
* a gate error stored as a mixture of many circuits (a two-qubit gate's depolarizing
  error composed with thermal relaxation is a mixture of about 150) is replaced by the
  same channel as one Kraus operator set, which Aer sets up ~10× faster.

The result is built once per (backend, qubit set) and never changed, so its dictionary
form, which Aer asks for on every run, is computed once too.

Relaxation on ``delay`` instructions (the ``RelaxationNoisePass`` Aer's
``NoiseModel.from_backend`` adds) is kept, and made cheap too. Aer runs that pass, in
Python, on every circuit that contains a delay: it builds a fresh thermal-relaxation error
per delay, deep-copies the noise model, adds each error to the copy and converts the copy
(a DD sequence's 31 delays cost ~40 ms on a 5-qubit job). Here the pass's errors are
memoized per (qubit, duration), so repeated delays bring the same error objects, and the
"deep copy" Aer asks for is one growing model per cut-down model that already holds the
errors of earlier runs, so Aer adds nothing new and its dictionary is cached too.

The planner (``planning.py``) needs two more views of a model: errors renumbered for a part
of a circuit simulated on its own compact register (``mapping``), and the *Pauli twirl*
of every error (``pauli=True``), which the stabilizer method can run when the exact
channel (amplitude damping from T1) is not a Pauli/reset mixture.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from .. import compat
from ..compat import noise_tables, simulator_with_options

#: Errors that are mixtures of more circuits than this are compacted to Kraus form.
COMPACT_ABOVE = 4

#: Distinct (qubit, delay duration) relaxation errors kept per cut-down model; past this
#: the growing model starts afresh (delay durations are the user's to choose).
MAX_DELAY_ERRORS = 4096


#: Operations an error may consist of and still run on Aer's stabilizer method.
STABILIZER_NOISE_OPS = frozenset(
    {
        "id",
        "x",
        "y",
        "z",
        "pauli",
        "reset",
        "h",
        "s",
        "sdg",
        "sx",
        "sxdg",
        "cx",
        "cz",
        "cy",
        "swap",
        "delay",
        "barrier",
    }
)


def _compact(error: Any) -> Any:
    """``error`` as one Kraus channel when that is smaller; the original if conversion fails."""
    from qiskit.quantum_info import Kraus
    from qiskit_aer.noise import QuantumError

    if not hasattr(error, "circuits") or len(error.circuits) <= COMPACT_ABOVE:
        return error
    try:
        return QuantumError(Kraus(error.to_quantumchannel()))
    except Exception:  # numerically not CPTP after conversion: keep the exact original
        return error


@functools.cache
def _frozen_model_class() -> type:
    from qiskit_aer.noise import NoiseModel

    class GrowingNoiseModel(NoiseModel):
        """What a frozen model's ``deepcopy`` gives Aer: it only ever gains delay errors.

        Thread-safe (runs of one view may overlap); ``to_dict`` is cached until an add.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._qrs_lock = threading.RLock()
            self._qrs_dict: dict = {}

        def add_all_qubit_quantum_error(self, *args: Any, **kwargs: Any) -> None:
            with self._qrs_lock:
                self._qrs_dict = {}
                super().add_all_qubit_quantum_error(*args, **kwargs)

        def __deepcopy__(self, memo: dict) -> NoiseModel:
            return self  # it only grows, so "copies" may share it

        def to_dict(self, serializable: bool = False) -> dict:
            with self._qrs_lock:
                if serializable not in self._qrs_dict:
                    self._qrs_dict[serializable] = super().to_dict(serializable)
                return self._qrs_dict[serializable]

    class FrozenNoiseModel(NoiseModel):
        """A noise model nobody changes after building it: ``to_dict`` is computed once."""

        def to_dict(self, serializable: bool = False) -> dict:
            cache = self.__dict__.setdefault("_qrs_dict_cache", {})
            if serializable not in cache:
                cache[serializable] = super().to_dict(serializable)
            return cache[serializable]

        def __deepcopy__(self, memo: dict) -> NoiseModel:
            """The growing model Aer moves delay errors into (see the module docstring)."""
            lock = self.__dict__.setdefault("_qrs_lock", threading.Lock())
            with lock:
                grown = self.__dict__.get("_qrs_grown")
                if grown is None or len(noise_tables(grown).default_quantum) > MAX_DELAY_ERRORS:
                    grown = GrowingNoiseModel.__new__(GrowingNoiseModel)
                    for name, value in self.__dict__.items():
                        if not name.startswith("_qrs_"):
                            setattr(grown, name, copy.deepcopy(value))
                    grown._qrs_lock, grown._qrs_dict = threading.RLock(), {}
                    self.__dict__["_qrs_grown"] = grown
            memo[id(self)] = grown
            return grown

    return FrozenNoiseModel


def _memoized_pass(
    noise_pass: Any,
    device: dict[int, int] | None = None,
    shrink: Callable[[Any], Any] = lambda error: error,
) -> Any:
    """``noise_pass`` (a ``LocalNoisePass``) returning one error object per (op, qubits).

    ``device`` maps a renumbered part's qubits back to the device's, whose T1 and T2 the
    pass looks up; ``shrink`` is applied to each error (the Pauli twirl, for stabilizer).
    """
    fast = copy.copy(noise_pass)
    func, cache = compat.noise_pass_function(noise_pass), LRUCache(MAX_DELAY_ERRORS)

    def error_for(op: Any, qubits: list[int]) -> Any:
        physical = [device[q] for q in qubits] if device else list(qubits)
        key = (op.name, op.duration, op.unit, tuple(physical))
        return cache.get(key, lambda: shrink(func(op, physical)))

    compat.set_noise_pass_function(fast, error_for)
    return fast


def restrict_noise_model(
    noise_model: Any,
    qubits: Iterable[int],
    readout: bool = True,
    mapping: dict[int, int] | None = None,
    compact: bool = True,
    pauli: bool = False,
) -> Any:
    """The errors of ``noise_model`` on ``qubits`` only, compacted (see module docstring).

    ``readout=False`` leaves the readout errors out: emulated IQ data (``iq.py``) brings
    its own misreads. ``mapping`` (device qubit → simulated qubit) renumbers the errors for
    a circuit part built on its own register; ``compact=False`` keeps mixtures as they are
    (the stabilizer runs Pauli/reset mixtures, not their Kraus form); ``pauli=True``
    replaces every gate and delay error by its Pauli twirl (``pauli_twirl``).
    """
    keep = set(qubits) if mapping is None else set(mapping)
    rename = (
        (lambda qargs: qargs)
        if mapping is None
        else (lambda qargs: tuple(mapping[q] for q in qargs))
    )
    shrink = cached_pauli_twirl if pauli else cached_compact if compact else (lambda error: error)
    sub = _frozen_model_class()(basis_gates=noise_model.basis_gates)
    tables = noise_tables(noise_model)
    for name, error in tables.default_quantum.items():
        sub.add_all_qubit_quantum_error(shrink(error), name, warnings=False)
    if readout and tables.default_readout is not None:
        sub.add_all_qubit_readout_error(tables.default_readout, warnings=False)
    for name, by_qubits in tables.local_quantum.items():
        for qargs, error in by_qubits.items():
            if keep.issuperset(qargs):
                sub.add_quantum_error(shrink(error), name, rename(qargs), warnings=False)
    for qargs, error in tables.local_readout.items() if readout else ():
        if keep.issuperset(qargs):
            sub.add_readout_error(error, rename(qargs), warnings=False)
    device = {simulated: physical for physical, simulated in mapping.items()} if mapping else None
    compat.set_noise_passes(
        sub,
        [
            _memoized_pass(p, device, cached_pauli_twirl if pauli else lambda error: error)
            for p in compat.noise_passes(noise_model)
        ],
    )
    return sub


def pauli_twirl(error: Any) -> Any:
    """The Pauli channel a Pauli twirl turns ``error`` into: the diagonal of its χ matrix.

    This is the noise a gate sees on average when it is twirled (randomly conjugated by
    Paulis), and a channel the stabilizer method can simulate. It keeps each error's
    Pauli error rates but drops its coherent and non-unital parts: amplitude damping
    (T1) becomes symmetric bit/phase flips, so |1> no longer decays preferentially to |0>.
    """
    import numpy as np
    from qiskit.quantum_info import Chi, pauli_basis
    from qiskit_aer.noise import PauliError

    if isinstance(error, PauliError):
        return error
    size = error.num_qubits
    weights = np.real(np.diag(Chi(error.to_quantumchannel()).data)) / 2**size
    weights = np.clip(weights, 0.0, None)
    keep = weights > 1e-12
    labels = [label for label, kept in zip(pauli_basis(size).to_labels(), keep) if kept]
    return PauliError(labels, weights[keep] / weights[keep].sum())


def stabilizer_compatible(noise_model: Any, qubits: Iterable[int]) -> bool:
    """Whether every gate error on ``qubits`` is a mixture the stabilizer method can run.

    True for depolarizing and for thermal relaxation with T2 ≤ T1 (identity, Z and reset
    branches); False where T2 > T1 makes the relaxation a general Kraus channel. (Delay
    relaxation is the planner's concern: ``NoiseFacts.delay_noise``.)
    """
    keep = set(qubits)

    def clifford(error: Any) -> bool:
        circuits = getattr(error, "circuits", None)
        if circuits is None:  # a PauliError (or a Pauli-Lindblad one)
            return type(error).__name__.startswith("Pauli")
        return all(
            instruction.operation.name in STABILIZER_NOISE_OPS
            for circuit in circuits
            for instruction in circuit.data
        )

    tables = noise_tables(noise_model)
    if not all(clifford(error) for error in tables.default_quantum.values()):
        return False
    return all(
        clifford(error)
        for by_qubits in tables.local_quantum.values()
        for qargs, error in by_qubits.items()
        if keep.issuperset(qargs)
    )


def readout_flip(noise_model: Any, qubit: int) -> float:
    """P(read 1 | prepared 0) on ``qubit`` under ``noise_model`` (0 without readout error)."""
    if noise_model is None:
        return 0.0
    tables = noise_tables(noise_model)
    error = tables.local_readout.get((qubit,), tables.default_readout)
    return 0.0 if error is None else float(error.probabilities[0][1])


class LRUCache:
    """A small thread-safe LRU map; values are built outside the lock by ``factory``."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, factory: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = factory()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


#: Pauli twirls and Kraus forms per error object (kept with it, so its id stays unique):
#: the device model's errors live as long as its cache, and each conversion costs tens of
#: milliseconds (a 150-circuit mixture turned into a channel), so it is done once.
_TWIRLS = LRUCache(8192)
_COMPACTED = LRUCache(8192)


def cached_pauli_twirl(error: Any) -> Any:
    """``pauli_twirl(error)``, computed once per error object."""
    return _TWIRLS.get(id(error), lambda: (error, pauli_twirl(error)))[1]


def cached_compact(error: Any) -> Any:
    """``_compact(error)``, computed once per error object (a part of a new set of qubits
    reuses the Kraus forms an earlier job's parts built)."""
    return _COMPACTED.get(id(error), lambda: (error, _compact(error)))[1]


def with_noise_model(simulator: Any, noise_model: Any) -> Any:
    """A view of ``simulator`` with another noise model; the original is left untouched.

    Copying the simulator's options (not rebuilding it with ``from_backend``, which takes
    seconds for large devices) keeps the target, method and thread settings.
    """
    return simulator_with_options(simulator, noise_model=noise_model)
