"""The app-context registry: the objects every blueprint shares.

``create_app`` builds one ``Registry`` and keeps it in ``app.extensions["qrs"]``;
views reach it with ``get_registry()``. Runner threads get the same objects directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from .auth import Auth
from .config import Config
from .executors.base import BaseExecutor
from .metadata import BackendMetadataProvider
from .runner import Runner
from .store import Store
from .validator_process import InlineValidator, ValidatorProcess


@dataclass
class Registry:
    config: Config
    store: Store
    metadata: BackendMetadataProvider
    executor: BaseExecutor
    runner: Runner
    auth: Auth
    validator: InlineValidator | ValidatorProcess = field(default_factory=InlineValidator)


def get_registry() -> Registry:
    return current_app.extensions["qrs"]
