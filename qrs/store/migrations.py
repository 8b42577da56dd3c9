"""Database set-up, once per data directory: numbered migrations and WAL mode, under a lock.

The schema's version is SQLite's ``PRAGMA user_version``. ``prepare`` brings a database
to ``LATEST``: it takes an exclusive file lock (``setup.lock`` in the data directory) so
that of many processes starting at once (gunicorn workers, ``qrs`` commands) exactly one
does the work while the others wait for it, copies an existing database to ``backups/``
with SQLite's online backup API before the first migration, applies each missing
migration in its own transaction together with its ``user_version``, and switches the
file to WAL mode (which persists, so no connection has to ask for it again). A lock
error from a process outside this protocol is retried for a bounded time.

Adding a schema change: append ``Migration(N + 1, "what", "SQL ...")`` to ``MIGRATIONS``
(the SQL runs as one script inside the migration's transaction); never edit an applied
one. Migration 1 is QRS 0.1.0's schema: a 0.1.0 data directory has ``user_version`` 0
and its tables already, and takes it as a no-op.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TypeVar

from .backup import backup_database
from .db import DB_NAME, open_connection
from .payloads import make_private

log = logging.getLogger("qrs.store")

T = TypeVar("T")

#: The set-up lock file inside the data directory.
SETUP_LOCK = "setup.lock"
#: Pre-migration copies of the database go here.
BACKUP_DIR = "backups"
#: How long a process waits for another one's set-up (a migration of a big database).
SETUP_WAIT_SECONDS = 600.0
#: How long set-up retries SQLite lock errors caused by processes that skip the file lock.
LOCK_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Migration:
    """One schema step: ``sql`` takes the database from ``version - 1`` to ``version``."""

    version: int
    name: str
    sql: str


def _sql(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "QRS 0.1.0 schema", _sql("schema.sql")),
    Migration(
        2, "per-user quotas: jobs.stored_bytes, usage indexes", _sql("migration_002_quotas.sql")
    ),
)
LATEST = MIGRATIONS[-1].version


class SetupError(RuntimeError):
    """The database cannot be set up (newer schema, lock never granted); says what to do."""


def prepare(
    data_dir: str | os.PathLike,
    busy_timeout_ms: int = 30_000,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Make ``data_dir`` ready for a ``Store``; returns the schema version.

    Safe and cheap to call from every process: gunicorn's master calls it before it
    forks, each ``Store`` again. A database already at the last version in WAL mode is
    recognised with two reads and no lock; anything else is set up under the lock.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(data_dir)
    path = data_dir / DB_NAME
    latest = migrations[-1].version
    if _is_ready(path, busy_timeout_ms, latest):
        return latest
    with _setup_lock(data_dir / SETUP_LOCK):
        return _retry_locked(lambda: _set_up(path, busy_timeout_ms, migrations))


def _is_ready(path: Path, busy_timeout_ms: int, latest: int) -> bool:
    """Whether the database is at ``latest`` and in WAL mode (False when unsure)."""
    if not path.exists():
        return False
    try:
        db = open_connection(path, busy_timeout_ms)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # e.g. locked by a set-up in progress: take the lock
        return False
    return version == latest and mode.lower() == "wal"


@contextmanager
def _setup_lock(lock_path: Path) -> Iterator[None]:
    """Hold the data directory's set-up lock; wait at most ``SETUP_WAIT_SECONDS`` for it.

    ``flock`` is released by the kernel when its holder exits, so a crashed set-up
    never leaves the directory locked.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, pause = time.monotonic() + SETUP_WAIT_SECONDS, 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() > deadline:
                    raise SetupError(
                        f"Another process has held {lock_path} for {SETUP_WAIT_SECONDS:.0f} s "
                        "(a migration still running, or a hung process): find it with "
                        f"'fuser {lock_path}'."
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


def _retry_locked(step: Callable[[], T]) -> T:
    """Run ``step``, retrying SQLite's "database is locked/busy" for a bounded time.

    Under the set-up lock only a process outside the protocol (an older QRS, the
    ``sqlite3`` shell) can hold the database; switching the journal mode in particular
    gives up at once on a lock instead of waiting for the busy timeout.
    """
    deadline, pause = time.monotonic() + LOCK_RETRY_SECONDS, 0.05
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            log.info("database set-up waits for a lock (%s); retrying", exc)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _set_up(path: Path, busy_timeout_ms: int, migrations: Sequence[Migration]) -> int:
    """Migrate the database at ``path`` to the last of ``migrations``; then WAL mode."""
    db = open_connection(path, busy_timeout_ms)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        latest = migrations[-1].version
        if version > latest:
            raise SetupError(
                f"{path} has schema version {version}, newer than this QRS knows ({latest}): "
                "it was written by a newer release. Run that release, or restore a backup "
                f"from {path.parent / BACKUP_DIR}."
            )
        if version < latest:
            if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
                copy = backup_database(
                    db, path.parent / BACKUP_DIR / f"qrs-schema{version}-{stamp}.sqlite3"
                )
                log.warning(
                    "database schema %d is older than %d: backed up to %s before migrating",
                    version,
                    latest,
                    copy,
                )
            for migration in migrations:
                if migration.version > version:
                    _apply(db, migration)
                    version = migration.version
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        return version
    finally:
        db.close()


def _apply(db: sqlite3.Connection, migration: Migration) -> None:
    """One migration and its version number in one transaction: all of it or nothing."""
    log.info("applying database migration %d (%s)", migration.version, migration.name)
    try:
        db.executescript(
            f"BEGIN IMMEDIATE;\n{migration.sql}\n;"
            f"PRAGMA user_version={int(migration.version)};\nCOMMIT;"
        )
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def schema_version(data_dir: str | os.PathLike) -> int:
    """The schema version of a data directory's database (0: none, or QRS 0.1.0)."""
    db = sqlite3.connect(Path(data_dir) / DB_NAME)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()
