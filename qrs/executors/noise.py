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
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable

from ..compat import noise_tables, simulator_with_options

#: Errors that are mixtures of more circuits than this are compacted to Kraus form.
COMPACT_ABOVE = 4


def _compact(error: Any) -> Any:
    """``error`` as one Kraus channel when that is smaller; the original if conversion fails."""
    from qiskit.quantum_info import Kraus
    from qiskit_aer.noise import QuantumError

    if len(error.circuits) <= COMPACT_ABOVE:
        return error
    try:
        return QuantumError(Kraus(error.to_quantumchannel()))
    except Exception:  # numerically not CPTP after conversion: keep the exact original
        return error


def _frozen_model_class() -> type:
    from qiskit_aer.noise import NoiseModel

    class FrozenNoiseModel(NoiseModel):
        """A noise model nobody changes after building it: ``to_dict`` is computed once."""

        def to_dict(self, serializable: bool = False) -> dict:
            cache = self.__dict__.setdefault("_qrs_dict_cache", {})
            if serializable not in cache:
                cache[serializable] = super().to_dict(serializable)
            return cache[serializable]

    return FrozenNoiseModel


def restrict_noise_model(noise_model: Any, qubits: Iterable[int]) -> Any:
    """The errors of ``noise_model`` on ``qubits`` only, compacted (see module docstring)."""
    keep = set(qubits)
    sub = _frozen_model_class()(basis_gates=noise_model.basis_gates)
    tables = noise_tables(noise_model)
    for name, error in tables.default_quantum.items():
        sub.add_all_qubit_quantum_error(_compact(error), name, warnings=False)
    if tables.default_readout is not None:
        sub.add_all_qubit_readout_error(tables.default_readout, warnings=False)
    for name, by_qubits in tables.local_quantum.items():
        for qargs, error in by_qubits.items():
            if keep.issuperset(qargs):
                sub.add_quantum_error(_compact(error), name, qargs, warnings=False)
    for qargs, error in tables.local_readout.items():
        if keep.issuperset(qargs):
            sub.add_readout_error(error, qargs, warnings=False)
    return sub


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


def with_noise_model(simulator: Any, noise_model: Any) -> Any:
    """A view of ``simulator`` with another noise model; the original is left untouched.

    Copying the simulator's options (not rebuilding it with ``from_backend``, which takes
    seconds for large devices) keeps the target, method and thread settings.
    """
    return simulator_with_options(simulator, noise_model=noise_model)
