"""Cross-process wake-up: a job queued in one process wakes runners in the others."""

from __future__ import annotations

import multiprocessing
import os

from qrs.wakeup import Wakeup


def _listen(data_dir: str, ready, woken) -> None:
    Wakeup(data_dir).listen(woken.set)
    ready.set()
    woken.wait(30)


def test_notify_reaches_another_process_and_forgets_dead_ones(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, woken = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_listen, args=(str(tmp_path), ready, woken))
    child.start()
    assert ready.wait(30)
    sender = Wakeup(tmp_path)
    sender.notify()
    assert woken.wait(10)
    child.join(10)
    marker = tmp_path / "wake" / str(child.pid)
    assert marker.exists()
    sender.notify()  # the listener has exited: its marker is cleaned up
    assert not marker.exists()
    assert str(os.getpid()) not in os.listdir(tmp_path / "wake")
