"""An example custom executor, loaded with
``QRS_EXECUTOR=tests.example_executor:StatevectorExecutor``.

It runs pubs on qiskit's reference primitives (``StatevectorSampler`` /
``StatevectorEstimator``): exact, noise-free, no Aer. docs/executors.md shows the same
shape; tests/test_executors.py runs it through the server with the stock client.
"""

from __future__ import annotations

from typing import Any

from qrs import joblog
from qrs.executors.base import BaseExecutor


class StatevectorExecutor(BaseExecutor):
    """Exact simulation with qiskit's reference primitives; ignores the backend's noise."""

    @property
    def name(self) -> str:
        return "statevector"

    def execute_sampler(self, pubs: list[Any], options: dict[str, Any],
                        backend_name: str) -> Any:
        from qiskit.primitives import StatevectorSampler

        joblog.emit(f"Exact statevector sampling; {backend_name}'s noise is ignored.")
        sampler = StatevectorSampler(default_shots=options.get("default_shots") or 1024)
        return sampler.run(pubs).result()

    def execute_estimator(self, pubs: list[Any], options: dict[str, Any],
                          backend_name: str) -> Any:
        from qiskit.primitives import StatevectorEstimator

        joblog.emit(f"Exact expectation values; {backend_name}'s noise is ignored.")
        estimator = StatevectorEstimator(default_precision=options.get("default_precision")
                                         or 0.0)
        return estimator.run(pubs).result()
