"""Payload decoding, validation and option mapping, without HTTP."""

from __future__ import annotations

import pytest

from qrs.codec import (PubLimits, decode_params, estimator_options, sampler_options,
                       validate_pubs)
from qrs.errors import InvalidInput, LimitExceeded

from .helpers import bell, sampler_params

LIMITS = PubLimits(max_pubs=3, max_shots=10_000, max_pub_shots=5_000,
                   max_parameter_bindings=100, max_observables=10)


def test_decodes_client_encoded_params():
    decoded = decode_params(sampler_params(shots=123), "sampler")
    circuit, values, shots = decoded.pubs[0]
    assert circuit.num_qubits == 2 and shots == 123
    assert validate_pubs("sampler", decoded.pubs, decoded.options, 5, LIMITS) == 1


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
        validate_pubs("sampler", decoded.pubs, decoded.options, 5, LIMITS)
    decoded = decode_params(sampler_params(shots=6_000), "sampler")
    with pytest.raises(LimitExceeded, match="QRS_MAX_PUB_SHOTS"):
        validate_pubs("sampler", decoded.pubs, decoded.options, 5, LIMITS)
    with pytest.raises(InvalidInput, match="only 1"):
        validate_pubs("sampler", decoded.pubs, decoded.options, 1, LIMITS)


def test_sampler_options_are_consumed_and_leftovers_reported():
    mapped = sampler_options({"default_shots": 10, "simulator": {"seed_simulator": 7},
                              "twirling": {"enable_gates": True, "num_randomizations": 8},
                              "execution": {"meas_type": "classified", "init_qubits": True}})
    assert mapped.primitive == {"default_shots": 10, "seed_simulator": 7}
    # Gate twirling is read by the planner (QRS_NOISE_APPROXIMATION); the rest is ignored.
    assert mapped.twirled is True
    assert mapped.ignored == {"twirling": {"num_randomizations": 8}}


def test_estimator_shots_become_precision():
    mapped = estimator_options({"default_shots": 400, "resilience_level": 1})
    assert mapped.primitive == {"default_precision": 0.05}
    assert mapped.ignored == {"resilience_level": 1}
