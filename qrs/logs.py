"""Logging set-up: level from ``QRS_LOG_LEVEL``, optional one-JSON-object-per-line output."""

from __future__ import annotations

import json
import logging
import time

from .config import Config


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(config: Config) -> None:
    """Configure the ``qrs`` logger once; repeated app creation (tests) changes nothing more."""
    logger = logging.getLogger("qrs")
    logger.setLevel(config.log_level.upper())
    if any(getattr(h, "_qrs", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler._qrs = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if config.log_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
