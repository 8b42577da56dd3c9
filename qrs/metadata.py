"""BackendMetadataProvider: what each backend looks like, from the client's fake provider.

Read-only: configuration, calibration properties and status of every backend in
``FakeProviderForBackendV2``. JSON documents are parsed once per process and cached;
the backend objects themselves (which hold Aer simulators and noise models) are cached
too, so executors build each noise model once.

Every ``fake_<device>`` also has a ``mock_<device>`` twin (``"class": "mock"`` in
``GET /backends``): the client sends ``run(..., dry_run=True)`` jobs there, and the server
answers them with random data of the right shape.
"""

from __future__ import annotations

import copy
import threading
import warnings
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from .compat import backend_json
from .errors import NotFound

MOCK_PREFIX = "mock_"


def snapshot_id(device: str, props: dict[str, Any]) -> str:
    """A calibration snapshot's id: the device and the snapshot's date in UTC.

    The fake provider holds one snapshot per device (its ``props_*.json``), which the
    ``mock_`` twin shares: ``fake_manila-20240527T182723Z``.
    """
    stamp = str(props.get("last_update_date", ""))
    try:
        stamp = datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        stamp = "".join(ch for ch in stamp if ch.isalnum()) or "0"
    return f"{device}-{stamp}"


class BackendMetadataProvider:
    """Cached access to fake backends by their served name (``fake_manila`` ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conf: dict[str, dict[str, Any]] = {}
        self._props: dict[str, dict[str, Any]] = {}

    @cached_property
    def _backends(self) -> dict[str, Any]:
        from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {b.name: b for b in FakeProviderForBackendV2().backends()}

    def names(self) -> list[str]:
        """Every served (non-mock) backend name, sorted."""
        return sorted(self._backends)

    def mock_names(self) -> list[str]:
        """The dry-run twin of every backend: ``fake_manila`` → ``mock_manila``."""
        return [MOCK_PREFIX + name.partition("_")[2] for name in self.names()]

    def is_mock(self, name: str) -> bool:
        return name.startswith(MOCK_PREFIX) and self.exists(name)

    def base_name(self, name: str) -> str:
        """The backend a mock twins (``mock_manila`` → ``fake_manila``); else ``name``."""
        if name.startswith(MOCK_PREFIX):
            twin = "fake_" + name[len(MOCK_PREFIX) :]
            if twin in self._backends:
                return twin
        return name

    def exists(self, name: str) -> bool:
        return self.base_name(name) in self._backends

    def get_backend(self, name: str) -> Any:
        """The cached ``FakeBackendV2`` instance (executors build simulators from it)."""
        try:
            return self._backends[self.base_name(name)]
        except KeyError:
            raise NotFound(
                f"Backend '{name}' does not exist on this server; GET /backends lists the "
                f"{len(self._backends)} available ones (for example 'fake_manila')."
            ) from None

    def calibration_id(self, name: str) -> str:
        """The id of the backend's calibration snapshot (in its properties)."""
        return str(self.get_properties(name)["calibration_id"])

    def check_calibration(self, name: str, calibration_id: str | None) -> None:
        """Refuse a calibration id this backend has no snapshot for (404, as IBM does)."""
        if calibration_id is not None and calibration_id != self.calibration_id(name):
            raise NotFound(
                f"Calibration '{calibration_id}' was not found for backend "
                f"'{name}'; its calibration is '{self.calibration_id(name)}'."
            )

    def get_configuration(self, name: str, calibration_id: str | None = None) -> dict[str, Any]:
        """The configuration JSON with ``backend_name`` set to the served name."""
        backend = self.get_backend(name)
        self.check_calibration(name, calibration_id)
        with self._lock:
            if name not in self._conf:
                conf = copy.deepcopy(backend_json(backend, backend.conf_filename))
                conf["backend_name"] = name  # the client matches on the served name
                self._conf[name] = conf
            return self._conf[name]

    def get_properties(self, name: str, calibration_id: str | None = None) -> dict[str, Any]:
        """The calibration properties JSON (T1, T2, gate and readout errors) of the
        backend's snapshot, with its ``calibration_id``."""
        backend = self.get_backend(name)
        with self._lock:
            if name not in self._props:
                props = copy.deepcopy(backend_json(backend, backend.props_filename))
                props["backend_name"] = name
                props["calibration_id"] = snapshot_id(self.base_name(name), props)
                self._props[name] = props
        self.check_calibration(name, calibration_id)
        return self._props[name]

    def physical_qubits(self, name: str) -> int:
        """Programmable qubits, reset qubits and couplers combined, as ``GET /backends``
        reports them. Devices whose fake lacks the figure count one per qubit and one per
        coupler (which reproduces the figure of every fake that has one)."""
        known = self.get_backend(name).physical_qubits
        if known:
            return int(known)
        conf = self.get_configuration(name)
        couplers = {tuple(sorted(edge)) for edge in conf.get("coupling_map") or []}
        return int(conf["n_qubits"]) + len(couplers)

    def operation_names(self, name: str) -> frozenset[str]:
        """Instructions the device runs natively (its target's operations)."""
        return frozenset(self.get_backend(name).target.operation_names)

    def num_qubits(self, name: str) -> int:
        return int(self.get_configuration(name)["n_qubits"])

    def summary(self, name: str, queue_length: int = 0) -> dict[str, Any]:
        """One entry of ``GET /backends``."""
        conf = self.get_configuration(name)
        return {
            "name": name,
            "status": {"name": "online", "reason": ""},
            "queue_length": queue_length,
            "qubits": conf["n_qubits"],
            "physical_qubits": self.physical_qubits(name),
            "processor_type": conf.get("processor_type", {}),
            "clops": {"type": "hardware", "value": conf.get("clops_h") or 0},
            "wait_time_seconds": None,
            "performance_metrics": {"quantum_volume": conf.get("quantum_volume")},
            **({"class": "mock"} if self.is_mock(name) else {}),
        }

    def status(self, name: str, queue_length: int = 0) -> dict[str, Any]:
        """``GET /backends/<name>/status``."""
        conf = self.get_configuration(name)
        return {
            "state": True,
            "status": "active",
            "message": "",
            "length_queue": queue_length,
            "backend_version": conf.get("backend_version", "1.0.0"),
        }
