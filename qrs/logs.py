"""Logging set-up: level from ``QRS_LOG_LEVEL``, optional one-JSON-object-per-line output.

Every record logged while a job executes carries that job's id (``job_id``), taken from
the job context the runner binds, so log shippers can follow one job across lines.
"""

from __future__ import annotations

import json
import logging
import time

from .config import Config
from .joblog import current_job_id


class JobIdFilter(logging.Filter):
    """Adds ``record.job_id``: an explicit ``extra={"job_id": ...}`` or the running job's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)  # set by JobIdFilter
        if job_id:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, with ``[job <id>]`` when a job is involved."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job_id = getattr(record, "job_id", None)
        return text if not job_id or job_id in record.getMessage() else f"{text} [job {job_id}]"


def configure_logging(config: Config) -> None:
    """Configure the ``qrs`` logger once; repeated app creation (tests) changes nothing more."""
    logger = logging.getLogger("qrs")
    logger.setLevel(config.log_level.upper())
    if any(getattr(h, "_qrs", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler._qrs = True  # type: ignore[attr-defined]
    handler.addFilter(JobIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if config.log_json
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.propagate = False
