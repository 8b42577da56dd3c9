"""Consistent copies of a data directory, safe while a server runs on it.

The database is copied with SQLite's online backup API (``sqlite3.Connection.backup``),
which reads a consistent snapshot page by page without stopping writers; a plain file
copy of a WAL database in use can be torn. Payload files are copied after the database:
a job's params file is written before its row, so every job in the snapshot has its
params on disk when they are copied (unless the job is deleted in between).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .db import DB_NAME

#: Files of a data directory that are data (the rest are per-process scratch: wake/, metrics/).
_DATA_FOLDERS = ("params", "results")
_DATA_FILES = ("secret.key",)


def backup_database(source: sqlite3.Connection, dest: Path) -> Path:
    """Write a consistent copy of the database ``source`` is connected to, to ``dest``.

    The copy is written beside ``dest`` and renamed, so ``dest`` is always complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    target = sqlite3.connect(partial)
    try:
        source.backup(target)
    finally:
        target.close()
    os.replace(partial, dest)
    return dest


@dataclass(frozen=True)
class BackupSummary:
    """What ``backup_data_dir`` copied."""

    path: Path
    database_bytes: int
    files: int


def backup_data_dir(
    data_dir: str | os.PathLike, dest: str | os.PathLike, busy_timeout_ms: int = 30_000
) -> BackupSummary:
    """Copy a data directory to the new directory ``dest``: usable as ``QRS_DATA_DIR``.

    Nothing in ``data_dir`` is changed (the schema is not migrated first): the copy is
    of the data as it is, which is what an operator wants before an upgrade.
    """
    source_dir, target = Path(data_dir), Path(dest)
    database = source_dir / DB_NAME
    if not database.exists():
        raise FileNotFoundError(f"no QRS database at {database}")
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; name a new directory")
    target.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(database, timeout=busy_timeout_ms / 1000)  # it only reads
    try:
        backup_database(source, target / DB_NAME)
    finally:
        source.close()
    files = 0
    for folder in _DATA_FOLDERS:
        (target / folder).mkdir(exist_ok=True)
        for entry in os.scandir(source_dir / folder) if (source_dir / folder).is_dir() else ():
            if entry.name.startswith(".") or not entry.is_file():
                continue  # a temp file being written
            try:
                shutil.copy2(entry.path, target / folder / entry.name)
                files += 1
            except FileNotFoundError:  # deleted meanwhile (prune, DELETE /jobs/<id>)
                pass
    for name in _DATA_FILES:
        if (source_dir / name).exists():
            shutil.copy2(source_dir / name, target / name)
            files += 1
    return BackupSummary(target, (target / DB_NAME).stat().st_size, files)
