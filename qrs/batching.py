"""The batching rule: which queued jobs may run together in one executor call.

Small Sampler jobs are cheap to simulate but not to start: Aer converts the noise model
on every call. Running several in one call (``execute_sampler_batch``) amortises that.
Jobs are batched only when nothing observable about one can depend on another:

* Sampler jobs outside any session or batch (a session's jobs keep their own order);
* on the same backend (one simulator, one noise model);
* at most ``QRS_BATCH_MAX_QUBITS`` active qubits each (cheap, so a batch stays short);
* with the same time limit (``max_execution_time``): the batch shares one, so one user's
  short limit can never cancel another user's job.

The store applies this rule when it claims (``Store.claim_batch``); this module is the
only place it is written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .states import Program

if TYPE_CHECKING:
    from .config import Config


@dataclass(frozen=True)
class BatchRule:
    """How many and which jobs one claim may take."""

    max_jobs: int = 1  # 1 = no batching
    max_qubits: int = 0
    program: str = Program.SAMPLER.value

    @classmethod
    def from_config(cls, config: Config) -> BatchRule:
        return cls(max_jobs=max(1, config.batch_max_jobs), max_qubits=config.batch_max_qubits)

    def admits(self, program_id: str, session_id: str | None, width: int) -> bool:
        """Whether a job like this may lead a batch (and so be joined by others)."""
        return (
            self.max_jobs > 1
            and program_id == self.program
            and session_id is None
            and width <= self.max_qubits
        )
