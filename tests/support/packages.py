"""Real third-party programs for the tests (nginx, Chromium): found on the machine, or
installed from the distribution's packages where the tests run as root with apt-get (CI
runs on a fresh machine as root); ``None`` where neither is possible, so the test skips
and says why."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

#: Per apt-get call; a machine without a reachable mirror must not stall the suite.
INSTALL_TIMEOUT_SECONDS = 300


def _found(names: Sequence[str]) -> str | None:
    for name in names:
        path = shutil.which(name) or next(
            (f"{folder}/{name}" for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/bin")
             if os.access(f"{folder}/{name}", os.X_OK)), None)
        if path:
            return path
    return None


def ensure_program(names: Sequence[str], package: str) -> str | None:
    """The first of ``names`` on this machine, installing ``package`` if none is."""
    found = _found(names)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", package],
                    ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:  # no mirror reachable: the test skips, saying so
            break
        if command[1] == "install" and done.returncode == 0:
            break
    return _found(names)
