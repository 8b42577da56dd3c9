"""Layering rules that keep the codebase livable: the execution side imports no web stack,
and every private qiskit API is looked up once at start-up (``qrs/compat.py``)."""

from __future__ import annotations

import re
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


def test_a_moved_internal_module_stops_start_up_naming_it(monkeypatch):
    monkeypatch.setitem(compat.INTERNAL, "gone", ("qiskit_ibm_runtime.no_such_module", "prepare"))
    with pytest.raises(compat.IncompatibleDependency, match=r"no_such_module\.prepare"):
        compat.check()


#: Modules of the client and its companions that are not their documented API: only
#: ``qrs/compat.py`` imports from them (the others import the names from ``qrs.compat``).
INTERNAL_MODULES = re.compile(
    r"^\s*(from|import)\s+(qiskit_ibm_runtime\.(executor_\w+\.|decoders|quantum_program\."
    r"params_converters|noise_learner_v3|fake_provider\.executor|options\.zne_options)"
    r"|ibm_quantum_schemas|samplomatic\.samplex|qiskit\.qpy\.formats)", re.MULTILINE)
#: Private attributes of theirs that QRS reads or sets (through ``qrs.compat``'s helpers).
PRIVATE_ATTRIBUTES = re.compile(
    r"\.(_semantic_role|_custom_noise_passes|_func|_load_json|_options|_default_\w+_errors?"
    r"|_local_\w+_errors?)\b")


def test_internal_apis_are_used_only_through_compat():
    offenders = []
    for path in sorted((ROOT / "qrs").rglob("*.py")):
        if path.name == "compat.py" and path.parent.name == "qrs":
            continue
        text = path.read_text()
        for pattern in (INTERNAL_MODULES, PRIVATE_ATTRIBUTES):
            offenders += [f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
                          for match in pattern.finditer(text)]
    assert offenders == []
