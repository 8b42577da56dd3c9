"""Estimator observables over independent parts: factor each Pauli term, multiply back.

A Pauli term P on a product state (the parts of a circuit do not entangle, with or without
noise) has ⟨P⟩ = Π_k ⟨P_k⟩, where P_k is P restricted to part k's qubits. So each part
estimates the distinct restrictions it sees, once, and every observable is rebuilt from
them: Σ_terms c · Π_k ⟨P_k⟩. Standard errors follow the reference ``BackendEstimatorV2``
convention (Σ |c|·σ_term), with σ_term of a product of independent estimates from
Var(Πx) = Π(μ²+σ²) − Πμ².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Beyond this many distinct Pauli terms the basis count is not computed exactly.
MAX_GROUPED_TERMS = 2000


def _labels(observables: Any) -> list[dict[str, float]]:
    return list(np.ravel(np.asarray(observables.tolist(), dtype=object)))


def observed_qubits(observables: Any) -> set[int]:
    """Qubits on which some term of some observable is not the identity."""
    support: set[int] = set()
    for observable in _labels(observables):
        for label in observable:
            support.update(i for i, char in enumerate(reversed(label)) if char != "I")
    return support


def measurement_bases(observables: Any) -> int:
    """How many measurement settings the reference estimator needs (qubit-wise groups)."""
    from qiskit.quantum_info import PauliList

    terms = {
        label for observable in _labels(observables) for label in observable if set(label) != {"I"}
    }
    if not terms:
        return 1
    if len(terms) > MAX_GROUPED_TERMS:
        return len(terms)
    return len(PauliList(sorted(terms)).group_qubit_wise_commuting())


@dataclass
class Factoring:
    """Per part the local Paulis to estimate; per observable element its factored terms."""

    local: list[list[str]]  # part → labels on the part's own register
    terms: list[list[tuple[float, tuple[int, ...]]]]  # element → (coeff, index per part|-1)


def factor(observables: Any, orders: Sequence[tuple[int, ...]]) -> Factoring:
    """Restrict every term of ``observables`` to each part (``orders``: its device qubits)."""
    local: list[list[str]] = [[] for _ in orders]
    index: list[dict[str, int]] = [{} for _ in orders]
    terms = []
    for observable in _labels(observables):
        element = []
        for label, coeff in observable.items():
            width = len(label)
            factors = []
            for part, order in enumerate(orders):
                chars = "".join(label[width - 1 - q] for q in reversed(order))
                if set(chars) <= {"I"}:
                    factors.append(-1)
                    continue
                if chars not in index[part]:
                    index[part][chars] = len(local[part])
                    local[part].append(chars)
                factors.append(index[part][chars])
            element.append((float(np.real(coeff)), tuple(factors)))
        terms.append(element)
    return Factoring(local=local, terms=terms)


def combine(
    factoring: Factoring,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    observables_shape: tuple[int, ...],
    bindings_shape: tuple[int, ...],
    pub_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Observables' values and standard errors, shaped like the pub, from part estimates.

    ``parts[k]`` holds part k's ``(evs, stds)`` of shape ``(len(local[k]), bindings)``.
    """
    bindings = int(np.prod(bindings_shape)) if bindings_shape else 1
    evs = np.zeros((len(factoring.terms), bindings))
    stds = np.zeros_like(evs)
    for element, terms in enumerate(factoring.terms):
        for coeff, factors in terms:
            mean = np.ones(bindings)
            second = np.ones(bindings)
            for part, position in enumerate(factors):
                if position < 0:
                    continue
                values, errors = parts[part][0][position], parts[part][1][position]
                mean = mean * values
                second = second * (values**2 + errors**2)
            evs[element] += coeff * mean
            stds[element] += abs(coeff) * np.sqrt(np.clip(second - mean**2, 0.0, None))
    which = np.broadcast_to(
        np.arange(max(1, len(factoring.terms))).reshape(observables_shape or ()), pub_shape
    )
    binding = np.broadcast_to(np.arange(bindings).reshape(bindings_shape or ()), pub_shape)
    return evs[which, binding], stds[which, binding]


def local_observables(labels: Sequence[str], bindings_ndim: int) -> Any:
    """An ``ObservablesArray`` of ``labels`` shaped to broadcast against the bindings."""
    from qiskit.primitives.containers.observables_array import ObservablesArray

    array = np.empty(len(labels), dtype=object)
    array[:] = [{label: 1.0} for label in labels]
    return ObservablesArray(array.reshape((len(labels),) + (1,) * bindings_ndim))
