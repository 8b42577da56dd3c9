"""QRS — a self-hosted Qiskit Runtime server for the stock ``qiskit-ibm-runtime`` client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask, request

from .config import Config

if TYPE_CHECKING:
    from .executors.base import BaseExecutor

__version__ = "0.1.0"

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


def prepare_data_dir(config: Config) -> None:
    """Create the data directory's database and signing secret, once, before workers fork.

    gunicorn's master calls this (``on_starting``); every worker would otherwise do it at
    the same moment. Imports no qiskit.
    """
    from pathlib import Path

    from .auth import Auth
    from .store import Store

    Store(config.data_dir)
    Auth._load_secret(Path(config.data_dir) / "secret.key")


def create_app(config: Config | None = None, executor: "BaseExecutor | None" = None) -> Flask:
    """Build the WSGI app: the only place where QRS's parts are wired together.

    ``config`` defaults to ``Config.from_env()``; ``executor`` defaults to the one
    ``config.executor`` names. The executor is never set up here: it runs (and is set
    up) in job processes only. Unless ``QRS_START_RUNNER=0``, one job process starts
    now, so an executor that cannot run here (no GPU, no Dask scheduler) stops the
    start-up with its message; runner threads start on the first API request (or in
    gunicorn's ``post_worker_init``), once per process.
    """
    config = config or Config.from_env()
    from . import metrics  # before anything imports prometheus_client: see metrics.py

    metrics.enable(config.data_dir)
    from .api import backends, cloud, dashboard, health, identity, jobs, sessions
    from .api.common import authenticate
    from .auth import Auth, is_loopback
    from .errors import register_error_handlers
    from .executors.base import resolve
    from .hosts import HostRouter
    from .logs import configure_logging
    from .metadata import BackendMetadataProvider
    from .openapi import register_docs
    from .registry import Registry
    from .runner import Runner
    from .store import Store

    _import_qiskit_in_this_thread()
    configure_logging(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_mb * 2**20
    app.json.sort_keys = False

    store = Store(config.data_dir)
    metadata = BackendMetadataProvider()
    executor = executor or resolve(config.executor)
    runner = Runner(store, executor, config, on_event=metrics.on_job_event)
    if config.start_runner:
        runner.preflight()
    registry = Registry(config=config, store=store, metadata=metadata, executor=executor,
                        runner=runner, auth=Auth(store, config.data_dir, config.api_keys_file,
                                                 config.token_ttl_seconds))
    app.extensions["qrs"] = registry

    register_error_handlers(app)
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
    app.wsgi_app = HostRouter(app.wsgi_app)  # one app answers every name the client derives
    logging.getLogger(__name__).info(
        "QRS %s: data in %s, %s executor, %s mode", __version__, config.data_dir,
        runner.executor_name,
        "open" if registry.auth.open_mode else "API-key")
    if registry.auth.open_mode and not is_loopback(config.host):
        logging.getLogger(__name__).warning(
            "Open mode on %s: no API key is configured, so anyone who can reach this "
            "address may submit jobs and read every job. Create a key with "
            "'qrs keys create --user NAME' (or set QRS_API_KEYS_FILE).", config.host)
    return app
