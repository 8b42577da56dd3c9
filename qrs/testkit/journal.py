"""The request journal: what went over the wire, for tests to assert on.

One JSON line per request (method, path, status, injected fault, duration, worker pid),
appended by whichever worker answered it to ``<data dir>/testkit/journal.jsonl``. Bodies,
headers and query strings are never written: they carry API keys, tokens and circuits.
The file is cut back to the last ``size`` entries once it holds about three times that.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .state import file_lock, folder_for

#: Bytes per entry assumed when deciding to compact (entries are ~150-200 bytes).
_ENTRY_BYTES = 256


class Journal:
    """The last ``size`` requests, shared by every process on one data directory."""

    def __init__(self, data_dir: str | os.PathLike, size: int) -> None:
        folder = folder_for(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path: Path = folder / "journal.jsonl"
        self._lock_path = folder / "journal.lock"
        self.size = max(1, size)

    def record(
        self, method: str, path: str, status: int | None, fault: str | None, started: float
    ) -> None:
        """Append one request (``started`` is its ``time.monotonic()`` at arrival)."""
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": method,
            "path": path,
            "status": status,
            "fault": fault,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "worker": os.getpid(),
        }
        line = json.dumps(entry) + "\n"
        with file_lock(self._lock_path):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                too_big = fh.tell() > 3 * self.size * _ENTRY_BYTES
            if too_big:
                self._write(self._read()[-self.size :])

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` (at most ``size``) requests, oldest first."""
        with file_lock(self._lock_path):
            kept = self._read()[-self.size :]
        return kept[-limit:] if limit else kept

    def clear(self) -> None:
        with file_lock(self._lock_path):
            self.path.unlink(missing_ok=True)

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".journal.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
        os.replace(tmp, self.path)
