"""A warm, memory-limited child process that validates submissions for one web process.

Decoding a job's params is where a hostile payload can still allocate: the guards bound
what the payload declares, but not every constructor a decoded value runs. So each web
process hands ``check_submission`` to a child of its own — by default
(``QRS_VALIDATION_PROCESS=auto``) for every job whose payload checks estimate at least
``QRS_VALIDATION_PROCESS_ABOVE_MB`` of decoding; ``1``: every job — whose address space
is capped (``RLIMIT_AS``: its start-up size plus ``QRS_VALIDATION_MEMORY_MB``) and which
answers within ``QRS_VALIDATION_TIMEOUT_SECONDS``. A payload that exhausts either kills only the child:
the request gets a 4xx naming the limit, and the next submission gets a fresh child.

The child is forked from a ``multiprocessing`` fork server that has already imported
qiskit and the client and run a warm-up validation (``qrs.validation_preload``), so a replacement costs a fork (tens of ms),
not an import (seconds); the fork server itself never runs a request or a thread, so
forking it is safe. Requests and answers are small pickled tuples over a pipe; one
validation runs at a time per web process, as decoding always did (``codec``'s lock).

``InlineValidator`` is the same interface without the child (``QRS_VALIDATION_PROCESS=0``).
Validating a tiny job in the child costs about 0.3 ms more on an idle machine, but
several milliseconds, and a third of the tiny-job throughput, on a saturated one (the
child waits to be scheduled; see the README), hence ``auto``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from . import errors
from .errors import LimitExceeded, PayloadTooLarge, QRSError
from .submission_check import Summary, check_submission, decoded_estimate, warm_up
from .validation import Limits

log = logging.getLogger(__name__)

#: What the fork server imports once, so each child starts warm.
PRELOAD = ["qrs.validation_preload"]

_OUT_OF_MEMORY = (
    "Checking this job's params needed more memory than this server allows "
    "for it (QRS_VALIDATION_MEMORY_MB); send a smaller job."
)


class InlineValidator:
    """Validation in the calling process (no memory limit beyond the guards)."""

    def validate(
        self,
        params_text: str,
        program_id: str,
        limits: Limits,
        configuration: dict[str, Any] | None = None,
    ) -> Summary:
        """``check_submission``, here."""
        return check_submission(params_text, program_id, limits, configuration)

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to stop."""


class ValidatorProcess:
    """One warm validation child, replaced whenever it dies or overruns its time.

    With ``above_bytes`` set (``QRS_VALIDATION_PROCESS=auto``), jobs whose payload checks
    estimate less decoding than that are validated here instead: a tiny job then pays
    neither the round trip nor the wait for the child to be scheduled on a busy machine,
    and the child (with its fork server) starts only when a big job first needs it.
    """

    def __init__(self, memory_mb: int, timeout_seconds: float, above_bytes: int = 0) -> None:
        self.memory_bytes = memory_mb * 2**20
        self.timeout = timeout_seconds
        self.above_bytes = above_bytes
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self.restarts = 0

    def start(self) -> None:
        """Make sure a child is up (gunicorn calls this at worker boot, in a thread);
        in ``auto`` mode the child waits for the first big job instead."""
        if self.above_bytes:
            return
        with self._lock:
            self._ensure()

    def close(self) -> None:
        """Stop the child (its pipe closes; it exits on its own as well)."""
        with self._lock:
            self._discard()

    def validate(
        self,
        params_text: str,
        program_id: str,
        limits: Limits,
        configuration: dict[str, Any] | None = None,
    ) -> Summary:
        """``check_submission`` in the child; its typed errors are raised here.

        A child that dies without answering may have been killed before the request
        (between requests, by the OOM killer or an operator): the request is tried once
        more on a fresh child, and refused only if that one dies on it too.
        """
        request = (params_text, program_id, limits, configuration)
        if (
            self.above_bytes
            and decoded_estimate(params_text, program_id, limits) < self.above_bytes
        ):
            return check_submission(*request, guarded=True)
        with self._lock:
            for attempt in (1, 2):
                conn = self._ensure()
                try:
                    conn.send(request)
                    reply = self._answer(conn)
                except (EOFError, OSError):
                    code = self._discard()
                    if attempt == 1:
                        continue
                    raise PayloadTooLarge(
                        "Checking this job's params needed more memory than this server "
                        "allows for it (QRS_VALIDATION_MEMORY_MB; the checking process ended "
                        f"with {code}); send a smaller job."
                    ) from None
                break
        return _unpack(reply)

    def _answer(self, conn: Connection) -> tuple:
        """The child's reply, within the time limit."""
        if not conn.poll(self.timeout):
            self._discard()
            raise LimitExceeded(
                f"Checking this job's params took longer than {self.timeout:g} s "
                "(QRS_VALIDATION_TIMEOUT_SECONDS); send a smaller job."
            )
        reply = conn.recv()
        if reply[0] == "restart":  # the child hit its limit and exits: use a new one
            self._discard()
        return reply

    # ------------------------------------------------------------------ the child
    def _ensure(self) -> Connection:
        """The pipe to a live child, starting one if there is none."""
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._discard()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        parent, child = context.Pipe()
        proc = context.Process(
            target=child_main, args=(child, self.memory_bytes), name="qrs-validator", daemon=True
        )
        with _main_module_hidden():
            proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self.restarts += 1
        return parent

    def _discard(self) -> str:
        """Drop the current child (killing it if it still runs); returns how it ended."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return "nothing"
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        code = proc.exitcode
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"exit status {code}"


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a child without multiprocessing re-running the parent's main script in it.

    A child started by a fork server first imports the parent's ``__main__`` (to unpickle
    objects defined there), which runs a script that builds and serves an app at import
    time a second time. The child needs nothing from ``__main__`` (its target lives in
    this module), so the main module is swapped for an empty one while the child's
    start-up data is taken.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _unpack(reply: tuple) -> Summary:
    """The child's answer: a summary, or the typed error it raised."""
    kind, *rest = reply
    if kind == "ok":
        return rest[0]
    name, message = rest
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, QRSError):
        raise cls(message)
    raise RuntimeError(f"validation failed in its process: {message}")


def _address_space() -> int:
    """This process's current virtual size in bytes (``VmSize``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def child_main(conn: Connection, memory_bytes: int) -> None:
    """The child's loop: cap the address space, then answer requests until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warm_up()  # a no-op's cost when the fork server preloaded it; else the imports, once
    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple = ("ok", check_submission(*request))
        except QRSError as exc:
            reply = ("error", type(exc).__name__, exc.message)
        except MemoryError:
            reply = ("restart", "PayloadTooLarge", _OUT_OF_MEMORY)
        except (ImportError, OSError) as exc:  # a library not mapped for want of room
            log.error("validation child: %s", exc)
            reply = ("restart", "PayloadTooLarge", _OUT_OF_MEMORY)
        except Exception as exc:  # a bug: the parent logs it as a 500
            reply = ("error", "", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
        if reply[0] == "restart":
            os._exit(0)


def make_validator(config: Any) -> InlineValidator | ValidatorProcess:
    """The validator ``config.validation_process`` asks for."""
    if config.validation_process == "0":
        return InlineValidator()
    above = (
        config.validation_process_above_mb * 2**20 if config.validation_process == "auto" else 0
    )
    return ValidatorProcess(config.validation_memory_mb, config.validation_timeout_seconds, above)
