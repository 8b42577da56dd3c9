"""Layering rules that keep the codebase livable: the execution side imports no web stack,
and every private qiskit API is looked up once at start-up (``qrs/compat.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qrs import compat, create_app
from qrs.config import Config

from .support.server import ROOT

WEB = ("flask", "werkzeug", "gunicorn")


@pytest.mark.parametrize("modules", [
    "qrs.errors, qrs.codec",
    "qrs.runner, qrs.executors.local, qrs.executors.dask, qrs.store, qrs.submission",
    "qrs.execution, qrs.workhorse, qrs.jobprocess, qrs.supervision, qrs.worker",
])
def test_the_execution_side_imports_no_web_stack(modules):
    code = (f"import sys, {modules}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({WEB!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]", out


def test_every_private_api_is_there():
    compat.check()


def test_a_moved_private_api_stops_start_up_naming_it_and_the_versions(monkeypatch, tmp_path):
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    monkeypatch.delattr(FakeBackendV2, "_load_json")
    with pytest.raises(compat.IncompatibleDependency, match=r"_load_json.*|qiskit-ibm-runtime"):
        compat.check()
    with pytest.raises(compat.IncompatibleDependency) as refused:
        create_app(Config(data_dir=str(tmp_path / "data"), start_runner=False))
    assert "FakeBackendV2._load_json" in str(refused.value)
    assert "qiskit-ibm-runtime 0." in str(refused.value)
