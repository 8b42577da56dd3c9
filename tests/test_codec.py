"""Payload decoding and validation, without HTTP."""

from __future__ import annotations

import pytest

from dataclasses import replace

from qrs.codec import decode_params
from qrs.config import Config
from qrs.errors import InvalidInput, LimitExceeded
from qrs.validation import Limits, validate_pubs

from .support.payloads import bell, sampler_params, wire

LIMITS = Limits.from_config(Config(max_pubs=3, max_shots=10_000, max_pub_shots=5_000,
                                   max_parameter_bindings=100, max_observables=10))
FIVE_QUBITS = replace(LIMITS, backend_qubits=5)


def test_decodes_client_encoded_params():
    decoded = decode_params(sampler_params(shots=123), "sampler")
    circuit, values, shots = decoded.pubs[0]
    assert circuit.num_qubits == 2 and shots == 123
    assert validate_pubs("sampler", decoded.pubs, decoded.options, FIVE_QUBITS) == 1


@pytest.mark.parametrize("params, message", [
    ({"pubs": []}, "non-empty"),
    ({"pubs": "x"}, "non-empty"),
    ({"pubs": [[{"__type__": "QuantumCircuit", "__value__": "not base64 qpy"}]]}, "decoded"),
    ({"pubs": [[1, 2, 3, 4, 5]]}, "1 to 3"),
    ({"pubs": [[bell().num_qubits]], "options": []}, "options"),
])
def test_bad_params_are_invalid_input(params, message):
    with pytest.raises(InvalidInput, match=message):
        decode_params(params, "sampler")


def test_limits_are_enforced():
    too_many = sampler_params()
    too_many["pubs"] = too_many["pubs"] * 4
    decoded = decode_params(too_many, "sampler")
    with pytest.raises(LimitExceeded, match="QRS_MAX_PUBS"):
        validate_pubs("sampler", decoded.pubs, decoded.options, FIVE_QUBITS)
    decoded = decode_params(sampler_params(shots=6_000), "sampler")
    with pytest.raises(LimitExceeded, match="QRS_MAX_PUB_SHOTS"):
        validate_pubs("sampler", decoded.pubs, decoded.options, FIVE_QUBITS)
    with pytest.raises(InvalidInput, match="only 1"):
        validate_pubs("sampler", decoded.pubs, decoded.options, replace(LIMITS, backend_qubits=1))


def test_resilience_level_travels_inside_the_options():
    """The client sends resilience_level beside the options; the executors get it inside."""
    params = wire({"pubs": [(bell(measure=False), "ZZ")], "options": {"default_shots": 10},
                   "version": 2, "support_qiskit": True, "resilience_level": 0})
    decoded = decode_params(params, "estimator")
    assert decoded.options == {"default_shots": 10, "resilience_level": 0}
    assert "resilience_level" not in decoded.extra
