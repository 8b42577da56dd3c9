"""The job and session store: SQLite rows plus payload files in the data directory.

This is the only state shared between gunicorn workers and runner threads, and the only
package that speaks SQL or changes a job's or session's state. Its parts:

* ``db.py``: the one database handle (a connection per thread, short transactions);
* ``migrations.py`` and ``schema.sql``: set-up once per data directory, under a lock;
* ``models.py``: ``Job``, ``Session``, ``NewJob``, ``JobQuery``;
* ``payloads.py``: params and result files;
* ``transition.py``: the one helper every job status change goes through;
* ``jobs.py``, ``lifecycle.py``, ``sessions.py``, ``keys.py``: ``Store``'s methods by concern;
* ``backup.py``: consistent copies (``qrs backup``, and before every migration).

Layout of the data directory::

    qrs.sqlite3            rows (WAL mode; schema version in PRAGMA user_version)
    params/<job id>.json   the job's ``params`` exactly as the client sent them (a private
                           job's are deleted once it is final)
    results/<job id>.json  the result text the client decodes (or the failure message); a
                           private job's is deleted when it is first read
    backups/               the database as it was before each migration
    setup.lock             held while one process sets the database up
"""

from __future__ import annotations

import os
from pathlib import Path

from ..states import FINAL_JOB_STATES
from .backup import backup_data_dir
from .db import Database
from .keys import ApiKeys
from .lifecycle import JobLifecycle
from .migrations import LATEST as SCHEMA_VERSION
from .migrations import SetupError, prepare, schema_version
from .models import Job, JobQuery, NewJob, Session, new_id
from .payloads import Payloads
from .sessions import SessionRecords


class Store(JobLifecycle, SessionRecords, ApiKeys):
    """SQLite rows + payload files. Thread-safe: one connection per thread.

    Opening a store sets its data directory up first (``prepare``): a new directory gets
    the schema, an older one is backed up and migrated, once, whoever opens it first.
    """

    def __init__(self, data_dir: str | os.PathLike, busy_timeout_ms: int = 30_000) -> None:
        self.data_dir = Path(data_dir)
        prepare(self.data_dir, busy_timeout_ms)
        self.payloads = Payloads(self.data_dir)
        self.params_dir = self.payloads.params_dir
        self.results_dir = self.payloads.results_dir
        self.db = Database(self.data_dir / "qrs.sqlite3", busy_timeout_ms)
        self.path = self.db.path
        self._disk_usage: tuple[float, int] = (float("-inf"), 0)  # (computed at, bytes)

    def ping(self) -> bool:
        """True when the database answers a query (readiness probe)."""
        return self.db.scalar("SELECT 1") == 1


__all__ = [
    "FINAL_JOB_STATES",
    "SCHEMA_VERSION",
    "Job",
    "JobQuery",
    "NewJob",
    "Session",
    "SetupError",
    "Store",
    "backup_data_dir",
    "new_id",
    "prepare",
    "schema_version",
]
