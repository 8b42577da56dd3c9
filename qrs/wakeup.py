"""Wake idle runners in every process of this server at once when work arrives.

Each process listens on a Linux abstract-namespace datagram socket named after the data
directory and its pid, and leaves a marker file ``wake/<pid>`` so others can find it.
Submitting a job sends one byte to every listener; a listener that is gone is forgotten.
Where abstract sockets do not exist (non-Linux), runners simply fall back to polling.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Wakeup:
    """Cross-process "there is new work" signal for one data directory."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.folder = Path(data_dir) / "wake"
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
        self._prefix = f"\0qrs-{digest}-"
        self._sender: socket.socket | None = None

    def listen(self, on_wake: Callable[[], None]) -> bool:
        """Start this process's listener thread; False where it is not supported."""
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(f"{self._prefix}{os.getpid()}")
        except OSError as exc:
            log.info("cross-process wake-up unavailable (%s); runners poll instead", exc)
            return False
        (self.folder / str(os.getpid())).touch()

        def loop() -> None:
            while True:
                try:
                    sock.recv(16)
                except OSError:
                    return
                on_wake()

        threading.Thread(target=loop, daemon=True, name="qrs-wakeup").start()
        return True

    def notify(self) -> None:
        """Tell every other listening process that a job was queued."""
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        me = str(os.getpid())
        for marker in os.scandir(self.folder):
            if marker.name == me:
                continue
            try:
                self._sender.sendto(b"!", f"{self._prefix}{marker.name}")
            except (ConnectionRefusedError, FileNotFoundError):
                Path(marker.path).unlink(missing_ok=True)  # that process is gone
            except OSError:
                pass  # its queue is full: it is awake already
