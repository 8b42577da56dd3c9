"""Noise models cut down to the qubits a job touches.

Aer converts the whole noise model to C++ on every run; for a calibrated 5-qubit device
that costs tens of milliseconds, for a 127-qubit one far more — much longer than
simulating a small circuit. Errors attached to qubits a circuit never uses can never
fire, so a model keeping only the errors on the circuit's qubits gives the same
statistics at a fraction of the cost.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable


def restrict_noise_model(noise_model: Any, qubits: Iterable[int]) -> Any:
    """A copy of ``noise_model`` without errors on qubits outside ``qubits``."""
    from qiskit_aer.noise import NoiseModel

    keep = set(qubits)
    sub = NoiseModel(basis_gates=noise_model.basis_gates)
    for name, error in noise_model._default_quantum_errors.items():
        sub.add_all_qubit_quantum_error(error, name, warnings=False)
    if noise_model._default_readout_error is not None:
        sub.add_all_qubit_readout_error(noise_model._default_readout_error, warnings=False)
    for name, by_qubits in noise_model._local_quantum_errors.items():
        for qargs, error in by_qubits.items():
            if keep.issuperset(qargs):
                sub.add_quantum_error(error, name, qargs, warnings=False)
    for qargs, error in noise_model._local_readout_errors.items():
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
    view = copy.copy(simulator)
    view._options = copy.copy(simulator._options)
    view._options.update_options(noise_model=noise_model)
    return view
