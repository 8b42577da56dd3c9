"""Server configuration: one frozen dataclass, read from ``QRS_*`` variables once.

Nothing else in QRS reads ``os.environ``; tests build a ``Config`` directly and pass it
to ``create_app``. Every limit the server enforces is a field here with a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


def _cpu_count() -> int:
    """Cores this process may use (respects affinity masks, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def machine_memory_mb() -> int:
    """Physical memory of this machine, in MiB."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


#: Memory a job process needs besides a simulation's state: Python, qiskit and Aer, the
#: backend's noise model, results on their way out.
JOB_PROCESS_BASE_MB = 2048


def default_job_memory_mb(max_memory_mb: int) -> int:
    """``QRS_JOB_MEMORY_MB`` when unset: the state limit plus the process's own needs.

    ``QRS_MAX_MEMORY_MB`` (0: 80 % of the machine) bounds what one job's simulation may
    take and is checked before it runs; this bounds the whole job process, so a job that
    allocates more anyway is stopped, never the machine. Capped at 90 % of the machine.
    """
    machine = machine_memory_mb()
    state = max_memory_mb or int(machine * 0.8)
    return min(state + JOB_PROCESS_BASE_MB, int(machine * 0.9))


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r} (use 1/0, true/false, yes/no, on/off)")


def _parse_size_mb(text: str) -> int:
    """Parse ``512``, ``512M``, ``8G`` into megabytes."""
    value = text.strip().upper().removesuffix("B")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    if value and value[-1] in scale:
        return int(float(value[:-1]) * scale[value[-1]])
    return int(value)


@dataclass(frozen=True)
class Config:
    """Everything an operator can set. Env var name = ``QRS_`` + field name upper-cased."""

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    data_dir: str = "./data"

    # Execution
    executor: str = "local"  # local | gpu | hybrid | dask | package.module:ClassName
    executor_threads: int = 0  # 0 = cores ÷ (2 × workers), at least 1 (see __post_init__)
    workers: int = 1
    noise: bool = True
    simulation_method: str = "automatic"
    max_memory_mb: int = 0  # 0 = derive from the machine's memory
    aer_threads: int = 0  # Aer threads per job; 0 = cores ÷ (workers × executor threads)
    fusion_enable: bool = True  # Aer gate fusion
    fusion_threshold: int = 0  # qubits from which fusion applies; 0 = Aer's default (14)
    gpu_device: int = 0
    gpu_memory_limit_mb: int = 0
    gpu_use_noise: bool = True
    gpu_batched_shots: bool = False
    gpu_custatevec: bool = False  # cuStateVec_enable, where the Aer build has cuQuantum
    gpu_fallback: str = ""  # "cpu" opts in to falling back when no GPU exists
    hybrid_gpu_min_qubits: int = 20
    hybrid_large: str = "gpu"  # executor for large circuits: gpu | dask | package.module:Class
    dask_scheduler: str = "local"  # tcp://host:8786 or "local" for a LocalCluster
    dask_workers: int = 2
    dask_connect_timeout: float = 15.0  # seconds to reach the scheduler at start-up

    # Simulation planning (qrs/executors/planning.py)
    noise_approximation: str = "none"  # none | pauli | twirled (programs that twirl)
    mps_max_bond_dimension: int = 0  # 0 = no cap (exact MPS); else Aer truncates to it
    mps_truncation_threshold: float = 1e-16  # Aer matrix_product_state_truncation_threshold
    split_tasks: int = 0  # tasks per heavy pub part; 0 = what the executor runs at once
    split_min_seconds: float = 2.0  # estimated CPU-seconds below which a pub is not split

    # Runner and store
    job_lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    max_attempts: int = 2
    poll_interval_ms: int = 200
    status_wait_ms: int = 300
    max_execution_time: int = 3600
    job_retention_days: float = 0.0
    session_max_ttl: int = 28800
    session_interactive_ttl: int = 300
    start_runner: bool = True
    job_memory_mb: int = 0  # resident memory per job process; 0 = QRS_MAX_MEMORY_MB + 2 GiB
    job_process_start_timeout: float = 120.0  # seconds for a job process to set up
    shutdown_grace_seconds: float = 55.0  # qrs worker: SIGTERM → running jobs may finish
    batch_max_jobs: int = 32  # small Sampler jobs run together in one Aer call (1 = off)
    batch_max_qubits: int = 12  # only jobs this narrow are batched

    # Limits
    max_body_mb: int = 100
    max_decoded_mb: int = 512
    max_pubs: int = 500
    max_shots: int = 10_000_000
    max_pub_shots: int = 1_000_000
    max_parameter_bindings: int = 1_000_000
    max_observables: int = 100_000
    max_queue_per_user: int = 10_000
    max_jobs_per_session: int = 100_000
    max_tags: int = 50
    max_clbits: int = 4096
    max_result_mb: int = 256  # Σ shots × classical bits of a job's result
    # Quotas per user
    max_stored_mb_per_user: int = 10_240  # params + results kept in the data directory
    max_finished_jobs_per_user: int = 100_000
    max_open_sessions_per_user: int = 100
    max_log_line_chars: int = 4096  # longer job-log lines are cut
    # Submission-time decoding in a memory-limited child process (one per web worker):
    # auto: for jobs whose payload checks estimate ≥ validation_process_above_mb decoded
    validation_process: str = "auto"  # auto | 1 (every job) | 0 (never)
    validation_process_above_mb: int = 16
    validation_memory_mb: int = 2048  # address space the child may add to its start-up size
    validation_timeout_seconds: float = 60.0

    # Auth and HTTP
    auth: str = "auto"  # auto (open until a key has ever existed) | keys | open
    api_keys_file: str = ""
    token_ttl_seconds: int = 3600
    trusted_hosts: str = ""  # comma-separated names the server answers to (Host header)
    cookie_secure: str = "auto"  # auto: Secure when the request came over TLS | 1 | 0

    # Test double (qrs.testkit): off unless asked for; never on a shared server
    control_api: bool = False  # /_qrs/ control API: scenarios, journal, reset (admin only)
    scenario: str = ""  # a scenario JSON file loaded at start (qrs serve --scenario FILE)
    journal_size: int = 1000  # requests the control API's journal keeps

    # Public names (deploy/nginx, the client's account url) and the one service instance
    public_host: str = ""  # the name in the client's url, e.g. qrs.lab.example (see hosts.py)
    extra_names: str = ""  # more names nginx answers (comma-separated; README: isolated lab)
    instance_name: str = "qrs"  # what IBM Cloud Global Search reports (instance="qrs" works)
    tls_cert: str = "/etc/qrs/tls/qrs.crt"  # certificate (chain) covering every public name
    tls_key: str = "/etc/qrs/tls/qrs.key"
    monitoring_allow: str = "127.0.0.1,::1"  # who may read /metrics, /ready, /health via nginx

    def __post_init__(self) -> None:
        """Resolve ``executor_threads=0``: half the cores run jobs, shared by all workers.

        So N gunicorn workers together run about cores ÷ 2 jobs at once (each with
        cores ÷ (workers × executor_threads) Aer threads, see ``LocalExecutor.threads``)
        instead of N × cores ÷ 2.
        """
        if self.executor_threads <= 0:
            auto = max(1, _cpu_count() // (2 * max(1, self.workers)))
            object.__setattr__(self, "executor_threads", auto)
        if self.job_memory_mb <= 0:
            object.__setattr__(self, "job_memory_mb", default_job_memory_mb(self.max_memory_mb))
        if self.auth not in ("auto", "keys", "open"):
            raise ValueError(f"QRS_AUTH={self.auth!r}: use auto, keys or open")
        if self.validation_process not in ("auto", "1", "0"):
            raise ValueError(
                f"QRS_VALIDATION_PROCESS={self.validation_process!r}: use auto, 1 or 0"
            )
        if self.cookie_secure not in ("auto", "1", "0"):
            raise ValueError(f"QRS_COOKIE_SECURE={self.cookie_secure!r}: use auto, 1 or 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build a config from ``QRS_*`` variables; ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QRS_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _convert(f, raw)
        if "QRS_GPU_MEMORY_LIMIT" in env and "gpu_memory_limit_mb" not in values:
            values["gpu_memory_limit_mb"] = _parse_size_mb(env["QRS_GPU_MEMORY_LIMIT"])
        values.update(overrides)
        return cls(**values)

    @property
    def instance_crn(self) -> str:
        """The CRN of the server's one service instance, in region ``us-east``, so that the
        client's default URL resolver sends its API calls to ``quantum.<host>/api/v1``."""
        return f"crn:v1:qrs:public:quantum-computing:us-east:a/qrs:{self.instance_name}::"

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (tests use this)."""
        return dataclasses.replace(self, **changes)


def _convert(f: dataclasses.Field, raw: str) -> Any:
    """Turn one env string into the field's type, naming the variable on failure."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "int":
            sized = f.name.endswith("_mb") or "_mb_" in f.name
            return _parse_size_mb(raw) if sized else int(raw)
        if kind == "float":
            return float(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"QRS_{f.name.upper()}={raw!r}: {exc}") from None
