"""Per-user quotas: stored bytes, finished jobs kept, open sessions.

Each is a ``Config`` setting, checked when a user asks for more (a job submitted, a
session opened) and refused with a 403 that names the setting and what to do. Usage is
read from the store in one indexed query per check; nothing is cached, so a deletion
frees quota at once in every process.
"""

from __future__ import annotations

from .config import Config
from .errors import QuotaExceeded
from .store import Store


def check_storage_quota(store: Store, config: Config, user_id: str, new_bytes: int) -> None:
    """Room for one more job of ``new_bytes`` params: stored bytes and finished jobs."""
    finished, stored = store.user_usage(user_id)
    if finished >= config.max_finished_jobs_per_user:
        raise QuotaExceeded(
            f"You keep {finished} finished jobs; the limit is "
            f"{config.max_finished_jobs_per_user} (QRS_MAX_FINISHED_JOBS_PER_USER). Delete "
            "old jobs (job.delete() or DELETE /jobs/<id>) to submit new ones."
        )
    limit = config.max_stored_mb_per_user * 2**20
    if stored + new_bytes > limit:
        raise QuotaExceeded(
            f"Your jobs' params and results take {stored / 2**20:,.1f} MiB and this job adds "
            f"{new_bytes / 2**20:,.1f} MiB; the limit is {config.max_stored_mb_per_user} MiB "
            "per user (QRS_MAX_STORED_MB_PER_USER). Delete old jobs (job.delete() or "
            "DELETE /jobs/<id>) to free space."
        )


def check_session_quota(store: Store, config: Config, user_id: str) -> None:
    """Room for one more open session or batch."""
    open_sessions = store.open_session_count(user_id)
    if open_sessions >= config.max_open_sessions_per_user:
        raise QuotaExceeded(
            f"You have {open_sessions} open sessions; the limit is "
            f"{config.max_open_sessions_per_user} (QRS_MAX_OPEN_SESSIONS_PER_USER). Close "
            "some (session.close() or session.cancel()) before opening another."
        )
