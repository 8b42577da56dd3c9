"""pytest plugin: test a Qiskit application against a real QRS, failures on demand.

Installed with QRS (entry point ``pytest11``: ``qrs``); it starts nothing unless a test
asks for one of its fixtures:

* ``qrs_server`` (session): a real QRS on a free loopback port, temporary data directory,
  control API on. ``.url``, ``.connect()``, ``.control()``, ``.log()``.
* ``qrs_control``: the control API, reset before and after each test:
  ``set_scenario(dict)``, ``reset()``, ``jobs()``, ``requests()`` (see docs/testing.md).
* ``qrs_service``: a fresh, connected stock ``QiskitRuntimeService`` per test.
* ``@pytest.mark.qrs_scenario({...})``: a scenario in force before ``qrs_service``
  connects (backend states must be: the client reads the backend list when it connects).
* ``qrs_settings`` (session): the server's ``QRS_*`` settings; override it in a
  ``conftest.py`` (``def qrs_settings(qrs_settings): return {**qrs_settings, ...}``).

ini options (``[pytest]``/``[tool.pytest.ini_options]``): ``qrs_executor``, ``qrs_noise``,
``qrs_keys``, ``qrs_workers``, ``qrs_scenario``, ``qrs_env`` (``QRS_NAME=value`` lines).

Key-leak guard: a stock client created without ``IAM_URL`` sends its API key to IBM
Cloud's IAM. The fixtures set ``IAM_URL`` to the test server and arm ``qrs.keyguard``:
while they are in use, any connection the client makes to a host that is not loopback
raises ``KeyLeakBlocked`` before anything is sent, and ``qrs_service`` fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

_INI: tuple[tuple[str, str, Any, Any], ...] = (
    ("qrs_executor", "QRS executor of the qrs_server fixture (QRS_EXECUTOR)", None, "local"),
    ("qrs_noise", "noise from backend calibrations (QRS_NOISE)", "bool", True),
    (
        "qrs_keys",
        "key mode: a user key for qrs_service, an admin key for qrs_control",
        "bool",
        False,
    ),
    ("qrs_workers", "server processes; more than 1 runs gunicorn", None, "1"),
    (
        "qrs_scenario",
        "a scenario JSON file in force from the start (qrs serve --scenario)",
        None,
        "",
    ),
    ("qrs_env", "more server settings, one QRS_NAME=value per line", "linelist", []),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, help_text, kind, default in _INI:
        parser.addini(name, help_text, type=kind, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "qrs_scenario(scenario): a QRS test scenario (dict) set by qrs_control "
        "before qrs_service connects (the client reads backends when it connects)",
    )


@pytest.fixture(scope="session")
def qrs_settings(pytestconfig: pytest.Config) -> dict[str, str]:
    """``QRS_*`` settings of the ``qrs_server`` process, from the ini options."""
    settings = {
        "QRS_EXECUTOR": str(pytestconfig.getini("qrs_executor")),
        "QRS_NOISE": "1" if pytestconfig.getini("qrs_noise") else "0",
    }
    for line in pytestconfig.getini("qrs_env"):
        name, sep, value = line.partition("=")
        if not sep or not name.strip().startswith("QRS_"):
            raise pytest.UsageError(f"qrs_env: {line!r} is not a QRS_NAME=value line")
        settings[name.strip()] = value.strip()
    return settings


@pytest.fixture(scope="session")
def qrs_server(
    qrs_settings: dict[str, str],
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """A real QRS for the whole test session (started on first use)."""
    from .server import LocalServer

    workers = str(pytestconfig.getini("qrs_workers")).strip() or "1"
    if not workers.isdigit() or int(workers) < 1:
        raise pytest.UsageError(f"qrs_workers must be a positive integer, not {workers!r}")
    scenario = str(pytestconfig.getini("qrs_scenario")).strip() or None
    if scenario:
        scenario = str(pytestconfig.rootpath / scenario)
    server = LocalServer(
        tmp_path_factory.mktemp("qrs") / "data",
        qrs_settings,
        workers=int(workers),
        keys=bool(pytestconfig.getini("qrs_keys")),
        scenario=scenario,
    )
    server.start()
    from .. import keyguard

    # The process is now configured for QRS: tokens go to it, the client goes nowhere else.
    os.environ["IAM_URL"] = server.url
    keyguard.arm("127.0.0.1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def qrs_control(qrs_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The control API, reset (scenario, journal, jobs) before and after the test; then
    the test's ``@pytest.mark.qrs_scenario({...})``, if it has one, is put in force."""
    control = qrs_server.control()
    control.reset()
    marker = request.node.get_closest_marker("qrs_scenario")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], dict):
            raise pytest.UsageError("@pytest.mark.qrs_scenario takes one dict, the scenario")
        control.set_scenario(marker.args[0])
    yield control
    control.reset()


@pytest.fixture
def qrs_service(qrs_server: Any, qrs_control: Any) -> Iterator[Any]:
    """A fresh stock ``QiskitRuntimeService`` on ``qrs_server`` (after the reset, so a
    previous test's scenario cannot refuse its token)."""
    from .. import keyguard

    before = len(keyguard.blocked())
    yield qrs_server.connect()
    leaked = keyguard.blocked()[before:]
    if leaked:
        pytest.fail(
            "QRS key-leak guard: the Qiskit client tried to reach "
            f"{', '.join(leaked)} during this test; the requests were blocked. A "
            "client without IAM_URL sends its API key to IBM Cloud.",
            pytrace=False,
        )
