"""Fixtures after flaskr's chain: app → client → live server → stock-client service."""

from __future__ import annotations

import pytest

from qrs import create_app
from qrs.config import Config

from .support.server import ServerProcess

#: Fixtures that start a real server process. A test that uses one, directly or through
#: another fixture, is marked ``system``; a test that starts one itself says so with
#: ``@pytest.mark.system``.
SERVER_FIXTURES = frozenset({
    "live_server", "ideal_server", "server", "load_server", "crash_server", "gated_server",
    "attacked", "api_only", "ops_server", "zeros_server", "deployment", "layout",
})


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that talks to a real server process ``system``."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=str(tmp_path / "data"), executor_threads=1)


@pytest.fixture
def app(config):
    """The app on a fresh data directory; its runner threads are stopped after the test
    (else they outlive it, still polling its store and logging into pytest's closed
    streams at exit)."""
    app = create_app(config)
    yield app
    app.extensions["qrs"].runner.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """One noisy server process shared by the client tests (memory limit kept small so
    the memory-refusal test needs no big circuit)."""
    server = ServerProcess(tmp_path_factory.mktemp("live") / "data",
                           env={"QRS_MAX_MEMORY_MB": "4", "QRS_EXECUTOR_THREADS": "2"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ideal_server(tmp_path_factory):
    """A server with noise off (``QRS_NOISE=0``)."""
    server = ServerProcess(tmp_path_factory.mktemp("ideal") / "data",
                           env={"QRS_NOISE": "0"}).start()
    yield server
    server.stop()


def connect(server: ServerProcess, token: str = "test-key"):
    from qrs.client import connect as qrs_connect

    return qrs_connect(server.url, token=token)


@pytest.fixture(scope="module")
def svc(server: ServerProcess):
    """The stock client on the server of the test module's own ``server`` fixture (a module
    that asks for ``svc`` or ``backend`` defines ``server`` with the settings it needs)."""
    return connect(server)


@pytest.fixture(scope="module")
def backend(svc):
    """fake_manila on ``svc``."""
    return svc.backend("fake_manila")


@pytest.fixture(scope="session")
def service(live_server):
    return connect(live_server)


@pytest.fixture(scope="session")
def ideal_service(ideal_server):
    return connect(ideal_server)
