"""The one poll loop of the tests: wait on a state, never on a sleep of a guessed length."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
               what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy and return that; fail (an
    ``AssertionError`` naming ``what``) after ``timeout`` seconds. ``predicate`` may raise
    to stop waiting early (a server that died will never become ready)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_status(job, statuses: Iterable[str], timeout: float = 30.0) -> str:
    """Wait until a stock-client job's ``status()`` is one of ``statuses``; returns it."""
    wanted = set(statuses)

    def reached() -> str | None:
        status = job.status()
        return status if status in wanted else None

    return wait_until(reached, timeout, what=f"job {job.job_id()} to reach {wanted}")
