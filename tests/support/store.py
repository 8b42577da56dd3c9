"""In-process store shortcuts for tests that exercise the store without HTTP."""

from __future__ import annotations

import json

from qrs.store import NewJob, Store


def new_job(store: Store, now: float | None = None, **fields) -> str:
    """Add a job (u1's sampler job on fake_manila unless ``fields`` say otherwise)."""
    values = {"user_id": "u1", "program_id": "sampler", "backend": "fake_manila",
              "params_text": json.dumps({"pubs": []}), **fields}
    return store.add_job(NewJob(**values), now=now).id
