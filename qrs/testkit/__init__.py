"""QRS as a test double for Qiskit applications: scenarios, HTTP faults, a request journal.

Off by default. ``QRS_CONTROL_API=1`` (the pytest plugin sets it) or a scenario file
(``QRS_SCENARIO``, ``qrs serve --scenario FILE``) turns it on; then ``create_app`` wires

* ``faults.FaultMiddleware`` around the WSGI app: ``http_faults`` and the journal;
* ``overrides.install``: Flask hooks for refused tokens, usage, backend states, polls;
* ``claims.ScriptedClaim`` as the runner's ``claim``: held jobs and scripted outcomes;
* ``qrs.api.control`` at ``/_qrs/`` (only with ``QRS_CONTROL_API=1``; admin only).

All state is in ``<data dir>/testkit/`` (``state.py``, ``journal.py``), so every gunicorn
worker sees and consumes the same scenario. ``plugin.py`` is the pytest plugin
(``qrs_server``, ``qrs_service``, ``qrs_control``); ``server.py`` starts a server for it
and ``control_client.py`` talks to the control API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from ..config import Config
    from ..store import Store
    from .claims import ScriptedClaim
    from .journal import Journal
    from .state import ScenarioState

log = logging.getLogger(__name__)

#: ``app.extensions`` key of the ``Testkit`` (the control API reads it).
EXTENSION = "qrs.testkit"


@dataclass
class Testkit:
    """The scenario machinery of one app."""

    config: Config
    state: ScenarioState
    journal: Journal | None
    claim: ScriptedClaim

    def install(self, app: Flask) -> None:
        """Wire the hooks into ``app`` (after its blueprints and ``authenticate``)."""
        from . import overrides
        from .faults import FaultMiddleware

        overrides.install(app, self.state)
        app.wsgi_app = FaultMiddleware(app.wsgi_app, self.state, self.journal)  # type: ignore
        app.extensions[EXTENSION] = self
        if self.config.control_api:
            from ..api import control

            app.register_blueprint(control.bp)


def create(config: Config, store: Store) -> Testkit | None:
    """The testkit if this server is a test double (``None`` otherwise: nothing changes)."""
    if not (config.control_api or config.scenario):
        return None
    from .claims import ScriptedClaim
    from .journal import Journal
    from .scenario import load_file
    from .state import ScenarioState

    initial = load_file(config.scenario) if config.scenario else None
    state = ScenarioState(config.data_dir)
    state.ensure(initial)
    if config.control_api:
        log.warning(
            "Test control API enabled at /_qrs/ (QRS_CONTROL_API=1): an admin (anyone, "
            "in open mode) can make jobs fail and requests break. Never enable it on "
            "a server people rely on."
        )
    if config.scenario:
        log.warning(
            "Test scenario %s in force: jobs and requests fail as it says.", config.scenario
        )
    journal = Journal(config.data_dir, config.journal_size) if config.control_api else None
    return Testkit(config=config, state=state, journal=journal, claim=ScriptedClaim(store, state))
