"""Configuration from the environment."""

from __future__ import annotations

import pytest

from qrs.config import Config


def test_reads_typed_values_from_env():
    config = Config.from_env({"QRS_PORT": "9001", "QRS_NOISE": "off", "QRS_MAX_MEMORY_MB": "2G",
                              "QRS_GPU_MEMORY_LIMIT": "8G", "QRS_JOB_LEASE_SECONDS": "2.5",
                              "QRS_EXECUTOR": "gpu"})
    assert config.port == 9001 and config.noise is False
    assert config.max_memory_mb == 2048 and config.gpu_memory_limit_mb == 8192
    assert config.job_lease_seconds == 2.5 and config.executor == "gpu"


def test_defaults_without_env():
    config = Config.from_env({})
    assert (config.host, config.port, config.data_dir, config.noise) == \
        ("127.0.0.1", 8000, "./data", True)


def test_bad_values_name_the_variable():
    with pytest.raises(ValueError, match="QRS_PORT"):
        Config.from_env({"QRS_PORT": "eighty"})
    with pytest.raises(ValueError, match="QRS_NOISE"):
        Config.from_env({"QRS_NOISE": "maybe"})
