"""The one database handle: a connection per thread, short write transactions, reads.

Every state change is one short write transaction taken eagerly (``BEGIN IMMEDIATE``), so
concurrent writers queue on SQLite's lock instead of deadlocking on an upgrade from a
read lock. Set-up (schema, WAL mode) is not done here but once, under a file lock, by
``migrations.prepare``: a connection only sets what is per connection.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("qrs.store")

#: A write lock waited for longer than this is logged ("sqlite write lock waited ...").
LOCK_WAIT_LOG_SECONDS = 0.1

#: The database file's name inside the data directory.
DB_NAME = "qrs.sqlite3"


def marks(values: Sequence[Any]) -> str:
    """``?,?,?``: the placeholders of an ``IN (...)`` list of ``values``."""
    return ",".join("?" * len(values))


def open_connection(path: str | os.PathLike, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with rows by name.

    Only per-connection settings are made here. ``journal_mode=WAL`` is a property of the
    database file and was set once by ``prepare``; asking for it again on every
    connection needs a lock that a busy start-up of many workers can fail to get.
    """
    db = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Database:
    """Thread-safe access to one SQLite file: one connection per thread (and process)."""

    def __init__(self, path: str | os.PathLike, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection; a new one after a fork (SQLite's must not be shared)."""
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = open_connection(self.path, self.busy_timeout_ms)
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; rolled back if the block raises."""
        db = self.connect()
        asked = time.monotonic()
        db.execute("BEGIN IMMEDIATE")
        waited = time.monotonic() - asked
        if waited > LOCK_WAIT_LOG_SECONDS:  # busy_timeout absorbed it; operators see how long
            log.info("sqlite write lock waited %.0f ms", waited * 1000)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """All rows of one query, outside any write transaction (WAL readers never block)."""
        return self.connect().execute(sql, args).fetchall()

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row of a query that always returns one."""
        return self.read(sql, args)[0][0]
