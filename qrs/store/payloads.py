"""A job's payload files: its params as the client sent them and its result text.

Payloads live beside the database, not in it: they can be megabytes, and a status poll or
a listing must never read them. Files are written atomically (temp file, fsync, rename),
so a reader never sees half of one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class Payloads:
    """``params/<job id>.json`` and ``results/<job id>.json`` under a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.params_dir = data_dir / "params"
        self.results_dir = data_dir / "results"
        for folder in (self.params_dir, self.results_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def params_path(self, job_id: str) -> Path:
        return self.params_dir / f"{job_id}.json"

    def result_path(self, job_id: str) -> Path:
        return self.results_dir / f"{job_id}.json"

    @staticmethod
    def stage(path: Path, text: str) -> Path:
        """Write ``text`` to a synced temp file beside ``path``; the caller renames it."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def write(self, path: Path, text: str) -> None:
        """Write atomically: temp file, fsync, rename."""
        os.replace(self.stage(path, text), path)

    def write_params(self, job_id: str, text: str) -> None:
        self.write(self.params_path(job_id), text)

    def write_result(self, job_id: str, text: str) -> None:
        self.write(self.result_path(job_id), text)

    def read_params(self, job_id: str) -> str:
        return self.params_path(job_id).read_text(encoding="utf-8")

    def read_result(self, job_id: str) -> str | None:
        """The result text, or ``None`` if none was written."""
        try:
            return self.result_path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def take_result(self, job_id: str) -> str | None:
        """Read a result and delete it, atomically: of two readers, one gets it.

        ``None`` once it has been taken.
        """
        path = self.result_path(job_id)
        taken = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.taken")
        try:
            os.rename(path, taken)
        except FileNotFoundError:
            return None
        try:
            return taken.read_text(encoding="utf-8")
        finally:
            taken.unlink(missing_ok=True)

    def delete(self, job_id: str) -> None:
        """Remove both files of a job (either may not exist)."""
        self.params_path(job_id).unlink(missing_ok=True)
        self.result_path(job_id).unlink(missing_ok=True)
