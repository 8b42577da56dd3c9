"""Database set-up: numbered migrations under ``PRAGMA user_version``, applied once under
a file lock with a backup first, WAL mode, lock retries, and ``qrs backup``."""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qrs.cli import main as qrs_main
from qrs.store import SCHEMA_VERSION, JobQuery, SetupError, Store, prepare, schema_version
from qrs.store.migrations import BACKUP_DIR, MIGRATIONS, Migration

from .support.server import ROOT
from .support.store import new_job

FIXTURE = Path(__file__).parent / "fixtures" / "data-v0.1"

#: A test-only second migration: adds a column, and a row whose second insert would fail,
#: so applying it twice cannot go unnoticed.
EXTRA = (*MIGRATIONS, Migration(
    MIGRATIONS[-1].version + 1, "test: a column and a marker row",
    "ALTER TABLE jobs ADD COLUMN note TEXT; "
    "CREATE TABLE applied (version INTEGER PRIMARY KEY); INSERT INTO applied VALUES (2);"))


def journal_mode(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()


def v01_copy(tmp_path: Path) -> Path:
    """A writable copy of the committed 0.1.0 data directory."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    return data


def test_fresh_directory_gets_the_latest_schema_in_wal_mode_without_a_backup(tmp_path):
    store = Store(tmp_path / "data")
    assert schema_version(store.data_dir) == SCHEMA_VERSION == 1
    assert journal_mode(store.path) == "wal"
    assert not (store.data_dir / BACKUP_DIR).exists()
    assert store.get_job(new_job(store)) is not None


def test_v01_directory_is_backed_up_then_migrated_once(tmp_path):
    data = v01_copy(tmp_path)
    assert schema_version(data) == 0  # 0.1.0 had no schema version
    Store(data)
    assert schema_version(data) == SCHEMA_VERSION
    backups = list((data / BACKUP_DIR).iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("qrs-schema0-")
    copy = sqlite3.connect(backups[0])
    assert copy.execute("PRAGMA user_version").fetchone()[0] == 0
    assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 9
    copy.close()
    Store(data)  # already migrated: no second backup
    assert len(list((data / BACKUP_DIR).iterdir())) == 1


def _prepare_with_extra(path: str, out) -> None:
    out.put(prepare(path, migrations=EXTRA))


def test_concurrent_starts_apply_a_migration_exactly_once(tmp_path):
    data = v01_copy(tmp_path)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=_prepare_with_extra, args=(str(data), out))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    versions = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert versions == [2] * 4
    db = sqlite3.connect(data / "qrs.sqlite3")
    assert db.execute("SELECT version FROM applied").fetchall() == [(2,)]
    assert "note" in {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
    assert len(list((data / BACKUP_DIR).iterdir())) == 1  # one backup, by the one that migrated


@pytest.mark.slow
def test_processes_opening_a_fresh_directory_at_once_never_hit_a_lock(tmp_path):
    """60 rounds of 16 processes opening one fresh data directory together (0.1.0 failed
    about 4 rounds in 100 with "database is locked"): every open succeeds."""
    done = subprocess.run([sys.executable, "-m", "tests.support.open_race", str(tmp_path),
                           "60", "16"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=True)
    assert json.loads(done.stdout) == [], done.stdout


def test_a_failed_migration_changes_nothing(tmp_path):
    data = tmp_path / "data"
    prepare(data)
    broken = (*MIGRATIONS, Migration(2, "test: breaks halfway",
                                     "CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);"))
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        prepare(data, migrations=broken)
    assert schema_version(data) == 1
    db = sqlite3.connect(data / "qrs.sqlite3")
    assert db.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchall() == []
    db.close()


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    prepare(data)
    db = sqlite3.connect(data / "qrs.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(SetupError, match="schema version 99, newer than this QRS knows"):
        Store(data)


def test_setup_retries_a_lock_held_outside_the_protocol(tmp_path, caplog):
    """A process that skips the set-up lock (an old QRS, the sqlite3 shell) holds the
    fresh database exclusively: set-up retries until it lets go, instead of failing."""
    data = tmp_path / "data"
    data.mkdir()
    holder = sqlite3.connect(data / "qrs.sqlite3", isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.INFO, logger="qrs.store")
    outcome: list = []
    thread = threading.Thread(
        target=lambda: outcome.append(prepare(data, busy_timeout_ms=100)), daemon=True)
    thread.start()
    waited = threading.Event()
    for _ in range(600):  # until set-up has hit the lock at least once (at most 60 s)
        if any("waits for a lock" in r.getMessage() for r in caplog.records):
            waited.set()
            break
        thread.join(0.1)
    holder.execute("ROLLBACK")
    holder.close()
    thread.join(60)
    assert waited.is_set() and outcome == [SCHEMA_VERSION]
    assert journal_mode(data / "qrs.sqlite3") == "wal"


def test_qrs_backup_copies_a_directory_that_serves_as_a_data_dir(tmp_path, monkeypatch, capsys):
    data = v01_copy(tmp_path)
    monkeypatch.setenv("QRS_DATA_DIR", str(data))
    target = tmp_path / "copy"
    assert qrs_main(["backup", str(target)]) == 0
    assert "Backed up" in capsys.readouterr().out
    assert schema_version(data) == 0  # a backup changes nothing, not even the schema
    assert sorted(p.name for p in (target / "params").iterdir()) == \
        sorted(p.name for p in (data / "params").iterdir())
    assert (target / "secret.key").read_text() == (data / "secret.key").read_text()
    store = Store(target)
    assert store.list_jobs(JobQuery(user_id=None, limit=100))[1] == 9
    assert qrs_main(["backup", str(target)]) == 1  # never over an existing backup
    assert "not empty" in capsys.readouterr().err

