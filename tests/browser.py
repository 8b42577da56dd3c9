"""A real headless Chromium for the dashboard tests and ``make screenshot``.

``python -m tests.browser OUTDIR`` starts a server, runs a few jobs through it and saves
screenshots of the dashboard, a job page and the API docs into OUTDIR.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from .support.packages import ensure_program
from .support.server import ServerProcess

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run"]


def chromium() -> str | None:
    """The Chromium binary, installed from the distribution's package if missing (as root
    with apt-get, as on CI), or ``None`` when this machine can have none."""
    return ensure_program(["chromium", "chromium-browser"], "chromium")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="qrs-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout, check=True)


def dump_dom(url: str, timeout: float = 90.0) -> str:
    """The page's DOM after Chromium has loaded and rendered it."""
    return _run(["--dump-dom", url], timeout).stdout.decode("utf-8", "replace")


def screenshot(url: str, path: Path, size: str = "1400,1000", timeout: float = 90.0) -> Path:
    """A PNG of the page as Chromium renders it."""
    _run([f"--screenshot={path}", f"--window-size={size}", url], timeout)
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG header (no imaging library needed)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def submit_bell(url: str, shots: int = 500, tags: list[str] | None = None) -> str:
    """A noisy Bell job on fake_manila over raw HTTP, as the stock client encodes it."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from .support.payloads import bell, isa, job_body, sampler_params

    body = job_body(sampler_params(isa(bell(), FakeManilaV2()), shots), tags=tags or [])
    request = urllib.request.Request(url + "/jobs", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())["id"]


def wait_final(url: str, job_id: str, timeout: float = 60.0) -> str:
    from .support.polling import wait_until

    def final() -> str | None:
        with urllib.request.urlopen(f"{url}/jobs/{job_id}?exclude_params=true") as answer:
            status = json.loads(answer.read())["status"]
        return status if status in ("Completed", "Failed", "Cancelled") else None

    return wait_until(final, timeout, interval=0.05, what=f"job {job_id} to finish")


def main(outdir: str) -> int:
    if chromium() is None:
        print("No chromium on PATH: install it (apt-get install -y chromium).", file=sys.stderr)
        return 1
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qrs-screenshot-") as folder:
        server = ServerProcess(Path(folder) / "data").start()
        try:
            jobs = [submit_bell(server.url, tags=["demo"]) for _ in range(3)]
            for job_id in jobs:
                wait_final(server.url, job_id)
            pages = {"dashboard.png": "/ui", "job.png": f"/ui/jobs/{jobs[0]}",
                     "docs.png": "/docs"}
            for name, path in pages.items():
                screenshot(server.url + path, out / name)
                print(f"{out / name}: {server.url + path}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
