"""A Qiskit application's own test suite, with QRS installed as a package, using only the
plugin's fixtures.

The test builds a wheel from QRS's sources, installs it into a fresh virtualenv (no
system site packages, no checkout on its path), writes a small user project whose tests
ask only for ``qrs_server``, ``qrs_service`` and ``qrs_control``, and runs pytest there.

Dependencies: installing qiskit, qiskit-aer and the rest afresh would download several
hundred MB and take minutes, so the wheel goes in with ``--no-deps`` and a ``.pth`` file
puts this environment's site-packages *after* the new one's. QRS itself is then only the
wheel's copy: this environment has QRS as an editable install, whose import hook lives in
a ``.pth`` that a plain path entry does not run, and the user tests assert that ``qrs``
and the plugin are imported from the new environment, not from this checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = '''
import math
import os
import sys
import warnings

import pytest
from qiskit import QuantumCircuit
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import (IBMRuntimeError, RuntimeJobFailureError,
                                           RuntimeJobMaxTimeoutError)

CHECKOUT = {checkout!r}


def bell_job(service, backend_name="fake_manila", shots=400):
    backend = service.backend(backend_name)
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1,
                                       seed_transpiler=1234).run(qc)
    return SamplerV2(mode=backend).run([isa], shots=shots)


def test_qrs_is_the_installed_package():
    import qrs
    import qrs.testkit.plugin

    for module in (qrs, qrs.testkit.plugin):
        assert module.__file__.startswith(sys.prefix), module.__file__
        assert not module.__file__.startswith(CHECKOUT), module.__file__


def test_ideal_bell_pair(qrs_service):
    counts = bell_job(qrs_service).result()[0].data.meas.get_counts()
    assert set(counts) <= {{"00", "11"}}  # qrs_noise = false in pytest.ini
    assert abs(counts.get("00", 0) - 200) <= 5 * math.sqrt(400 * 0.25)


def test_submission_retries_seen_in_the_journal(qrs_service, qrs_control):
    qrs_control.set_scenario({{"http_faults": [
        {{"method": "POST", "path": "/api/v1/jobs", "status": 503, "times": 2}}]}})
    bell_job(qrs_service).result()
    statuses = [r["status"] for r in qrs_control.requests() if r["path"] == "/api/v1/jobs"]
    assert statuses == [503, 503, 200]


def test_scripted_failure_reaches_the_application(qrs_service, qrs_control):
    qrs_control.set_scenario({{"next_jobs": [
        {{"outcome": "failed", "reason": "QPU calibration in progress", "reason_code": 1517}}]}})
    with pytest.raises(RuntimeJobFailureError, match="QPU calibration in progress"):
        bell_job(qrs_service).result()
    assert qrs_control.jobs()[0]["reason_code"] == 1517


def test_code_1305_is_a_max_time_error(qrs_service, qrs_control):
    qrs_control.set_scenario({{"next_jobs": [{{"outcome": "cancelled", "reason_code": 1305}}]}})
    with pytest.raises(RuntimeJobMaxTimeoutError):
        bell_job(qrs_service).result()


@pytest.mark.qrs_scenario({{"backends": {{
    "*": {{"queue_length": 50}},
    "fake_manila": {{"status": "offline", "queue_length": 0}},
    "fake_lima": {{"queue_length": 3}}}}}})
def test_least_busy_skips_the_offline_backend(qrs_service):
    assert qrs_service.least_busy().name == "fake_lima"


def test_usage_limit_is_a_403(qrs_service, qrs_control):
    qrs_control.set_scenario({{"usage": {{"limit_seconds": 600, "consumed_seconds": 600}}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(IBMRuntimeError, match="403"):
            bell_job(qrs_service)


def test_a_client_without_iam_url_cannot_leak_its_key(qrs_server, monkeypatch):
    from qrs import keyguard

    monkeypatch.delenv("IAM_URL", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        QiskitRuntimeService(channel="ibm_quantum_platform", token="my-real-ibm-key",
                             url="https://quantum.cloud.ibm.com",
                             instance="crn:v1:bluemix:public:quantum-computing:us-east:a/x::")
    assert "iam.cloud.ibm.com:443" in keyguard.blocked()
'''

PYTEST_INI = """\
[pytest]
qrs_noise = false
filterwarnings =
    ignore::DeprecationWarning
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def _wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the sources (the build writes nothing in the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "qrs", src / "qrs", ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
          str(tmp_path / "dist"), str(src)], timeout=600)
    return next((tmp_path / "dist").glob("qrs-*.whl"))


def _venv(tmp_path: Path, wheel: Path) -> Path:
    """A fresh virtualenv with the wheel, reusing this environment's dependencies."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run([str(python), "-c", where]).stdout.strip())
    (purelib / "_reuse_test_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)], timeout=600)
    return python


def test_user_project_tests_run_on_the_installed_plugin(tmp_path):
    python = _venv(tmp_path, _wheel(tmp_path))
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text(PYTEST_INI)
    (project / "test_app.py").write_text(
        textwrap.dedent(USER_TESTS).format(checkout=str(ROOT)))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "QRS_", "PYTHON", "IAM_URL", "QISKIT"))}
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "ignore::DeprecationWarning"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    report = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert re.search(r"\b8 passed\b", done.stdout), report
