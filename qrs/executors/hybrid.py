"""HybridExecutor: small jobs on the CPU, large ones on the GPU (or a Dask cluster).

A job's size is its widest independent part that needs a simulator
(``planning.simulated_width``: qubits that are only measured, or never meet the rest, do
not count — a Bell pair measured on 127 qubits is 2 qubits of work). Below
``QRS_HYBRID_GPU_MIN_QUBITS`` the CPU wins — a GPU's launch and transfer overheads
dominate small states — and from there on the large-side executor (``QRS_HYBRID_LARGE``:
``gpu``, ``dask`` or ``package.module:Class``) runs it.
Every job's log says which side it went to and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import joblog
from .base import BaseExecutor, ExecutorUnavailable, resolve
from .local import LocalExecutor
from .planning import simulated_width

if TYPE_CHECKING:
    from ..config import Config
    from ..metadata import BackendMetadataProvider


class HybridExecutor(BaseExecutor):
    """Routes each job by its width to a CPU ``LocalExecutor`` or the large-side executor."""

    def __init__(self) -> None:
        self.small: BaseExecutor = LocalExecutor()
        self.large: BaseExecutor | None = None

    @property
    def name(self) -> str:
        return f"hybrid({self.small.name}|{self.large.name if self.large else '?'})"

    def setup(self, config: Config, metadata: BackendMetadataProvider) -> None:
        """Set up both sides now, so a missing GPU or cluster stops the start-up."""
        super().setup(config, metadata)
        if config.hybrid_large.strip().lower() == "hybrid":
            raise ExecutorUnavailable(
                "QRS_HYBRID_LARGE=hybrid would route to itself; use "
                "gpu, dask or package.module:ClassName."
            )
        self.small.setup(config, metadata)
        self.large = resolve(config.hybrid_large)
        self.large.setup(config, metadata)

    def route(self, pubs: list[Any]) -> BaseExecutor:
        """Pick the executor for a job's pubs and say so in the job's log."""
        assert self.large is not None, "setup() was not called"
        width = max(simulated_width(pub) for pub in pubs)
        threshold = self.config.hybrid_gpu_min_qubits
        chosen, relation = (self.large, "≥") if width >= threshold else (self.small, "<")
        joblog.emit(
            f"Hybrid routing: widest independent part has {width} qubits {relation} "
            f"QRS_HYBRID_GPU_MIN_QUBITS={threshold} → {chosen.name} executor."
        )
        return chosen

    def execute_sampler(self, pubs: list[Any], options: dict[str, Any], backend_name: str) -> Any:
        return self.route(pubs).execute_sampler(pubs, options, backend_name)

    def execute_estimator(
        self, pubs: list[Any], options: dict[str, Any], backend_name: str
    ) -> Any:
        return self.route(pubs).execute_estimator(pubs, options, backend_name)

    def close(self) -> None:
        self.small.close()
        if self.large is not None:
            self.large.close()
