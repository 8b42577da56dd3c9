"""QRS — a self-hosted Qiskit Runtime server for the stock ``qiskit-ibm-runtime`` client.

Importing ``qrs`` (or ``qrs.errors``, ``qrs.codec``, the runner, an executor) does not
import Flask: only ``create_app`` and the ``api`` package need the web stack, so the
execution side (child processes, Dask workers) stays free of it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    from flask import Flask

    from .executors.base import BaseExecutor

__version__ = "0.2.0"

#: The REST API is served at both roots, so both client connection recipes work.
API_PREFIXES = ("", "/api/v1")


def _import_qiskit_in_this_thread() -> None:
    """Import qiskit's extension modules from the thread that builds the app.

    qiskit's Rust extension crashes the process (segmentation fault) when it was first
    imported by a thread that has since exited — exactly what a request thread or a job
    thread is. The thread calling ``create_app`` lives as long as the server does.
    """
    import qiskit  # noqa: F401
    import qiskit_aer  # noqa: F401
    import qiskit_ibm_runtime  # noqa: F401

    # The client's mitigation engine, imported once here rather than first by whichever
    # request thread checks a legacy job's options while a runner thread runs one: two
    # threads importing one package at once can see it half-initialised (a 500).
    from .executors import legacy_options

    legacy_options.preload()


def private_files() -> None:
    """Files and folders this process creates are its user's alone (umask 077): the data
    directory holds every user's circuits and results, and the database and secret."""
    os.umask(0o077)


def prepare_data_dir(config: Config) -> None:
    """Create the data directory's database and signing secret, once, before workers fork.

    gunicorn's master calls this (``on_starting``); every worker would otherwise do it at
    the same moment. Imports no qiskit.
    """
    from pathlib import Path

    from .auth import load_secret
    from .store import Store

    private_files()
    Store(config.data_dir)
    load_secret(Path(config.data_dir) / "secret.key")


def create_app(config: Config | None = None, executor: BaseExecutor | None = None) -> Flask:
    """Build the WSGI app: the only place where QRS's parts are wired together.

    ``config`` defaults to ``Config.from_env()``; ``executor`` defaults to the one
    ``config.executor`` names. The executor is never set up here: it runs (and is set
    up) in job processes only. Unless ``QRS_START_RUNNER=0``, one job process starts
    now, so an executor that cannot run here (no GPU, no Dask scheduler) stops the
    start-up with its message; runner threads start on the first API request (or in
    gunicorn's ``post_worker_init``), once per process.
    """
    from flask import Flask, request

    config = config or Config.from_env()
    private_files()
    from . import (
        compat,
        metrics,  # before anything imports prometheus_client: see metrics.py
    )

    metrics.enable(config.data_dir)
    from . import http_guard
    from .api import backends, cloud, dashboard, health, identity, jobs, sessions
    from .api.common import authenticate
    from .api.errors import register_error_handlers
    from .auth import Auth, is_loopback
    from .executors.base import resolve
    from .hosts import HostRouter
    from .logs import configure_logging
    from .metadata import BackendMetadataProvider
    from .openapi import register_docs
    from .registry import Registry
    from .runner import Runner
    from .store import Store
    from .testkit import create as create_testkit
    from .validator_process import make_validator

    _import_qiskit_in_this_thread()
    compat.check()  # a qiskit upgrade that moved a private API stops us here, not in a job
    configure_logging(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_mb * 2**20
    app.json.sort_keys = False  # type: ignore[attr-defined]

    store = Store(config.data_dir)
    metadata = BackendMetadataProvider()
    executor = executor or resolve(config.executor)
    testkit = create_testkit(config, store)  # None unless QRS_CONTROL_API or QRS_SCENARIO
    runner = Runner(
        store,
        executor,
        config,
        on_event=metrics.on_job_event,
        claim=testkit.claim if testkit else None,
    )
    if config.start_runner:
        runner.preflight()
    auth = Auth(
        store, config.data_dir, config.api_keys_file, config.token_ttl_seconds, mode=config.auth
    )
    auth.check_at_start()
    registry = Registry(
        config=config,
        store=store,
        metadata=metadata,
        executor=executor,
        runner=runner,
        auth=auth,
        validator=make_validator(config),
    )
    app.extensions["qrs"] = registry

    register_error_handlers(app)
    http_guard.init_app(app, config)  # its Host check runs before authentication
    protected: set[str] = set()
    for prefix in API_PREFIXES:
        suffix = prefix.replace("/", "_")
        for blueprint in (identity.bp, backends.bp, jobs.bp, sessions.bp):
            name = f"{blueprint.name}{suffix}"
            app.register_blueprint(blueprint, url_prefix=prefix or None, name=name)
            if blueprint is not identity.bp:
                protected.add(name)
    app.before_request(lambda: authenticate() if request.blueprint in protected else None)
    app.register_blueprint(cloud.bp)  # IBM Cloud instance lookup (see hosts.py)
    app.register_blueprint(health.bp)
    app.register_blueprint(dashboard.bp)
    register_docs(app)
    # One app answers every name the client derives (see hosts.py).
    app.wsgi_app = HostRouter(app.wsgi_app)  # type: ignore[method-assign]
    if testkit is not None:
        testkit.install(app)  # outermost: faults and the journal see what the client sent
    logging.getLogger(__name__).info(
        "QRS %s: data in %s, %s executor, %s mode",
        __version__,
        config.data_dir,
        runner.executor_name,
        "open" if registry.auth.open_mode else "API-key",
    )
    if config.auth == "open" and store.has_api_keys():
        logging.getLogger(__name__).warning(
            "QRS_AUTH=open: the API keys that exist are ignored and every caller is the "
            "shared admin user."
        )
    if registry.auth.open_mode and not is_loopback(config.host):
        logging.getLogger(__name__).warning(
            "Open mode on %s: no API key is configured, so anyone who can reach this "
            "address may submit jobs and read every job. Create a key with "
            "'qrs keys create --user NAME' (or set QRS_API_KEYS_FILE).",
            config.host,
        )
    return app
