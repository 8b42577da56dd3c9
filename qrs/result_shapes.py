"""Results in IBM's shapes: what every executor's result passes through before it is stored.

Executors return qiskit ``PrimitiveResult`` objects built by Aer, the GPU, Dask or a
custom class; IBM's service returns the same classes with a few guarantees that programs
written for IBM rely on. ``conform`` adds them, whatever the executor did:

* every Estimator data field (``evs``, ``stds``, ``ensemble_standard_error``) is an
  ``ndarray`` of the pub's shape — 0-d for a pub of shape ``()``, never a float (Aer's
  ``stds`` is a ``numpy.float64`` there, which the wire format turns into a Python float
  and ``.shape`` then fails);
* ``ensemble_standard_error`` is present (except with ZNE, whose
  ``ensemble_stds_noise_factors`` take its place, as on IBM); with no twirled ensemble it
  equals ``stds``;
* Sampler results say when their data was taken (``metadata["execution"]["execution_spans"]``):
  an executor that does not record spans gets one span over its whole run.

Bit arrays are left alone: they always carry the pub's shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from .spans import data_span, execution_metadata, has_spans, is_sampler_pub_result

ESTIMATOR_FIELDS = ("evs", "stds", "ensemble_standard_error")


def conform(result: Any, window: tuple[datetime, datetime] | None = None) -> Any:
    """``result`` in IBM's shapes; anything but a ``PrimitiveResult`` is returned as is.

    ``window`` is when the executor ran (start, stop), used for Sampler results that carry
    no execution spans of their own.
    """
    from qiskit.primitives import PrimitiveResult

    if not isinstance(result, PrimitiveResult):
        return result
    pubs = [_conform_pub(pub) for pub in result]
    metadata = dict(result.metadata)
    samplers = {index: pub for index, pub in enumerate(pubs) if is_sampler_pub_result(pub)}
    if window is not None and samplers and not has_spans(metadata):
        metadata.update(execution_metadata([data_span(*window, samplers)]))
    return PrimitiveResult(pubs, metadata=metadata)


def _conform_pub(pub: Any) -> Any:
    """One pub result with its Estimator fields as arrays of the pub's shape."""
    from qiskit.primitives.containers import DataBin

    data = pub.data
    if "evs" not in data:
        return pub
    fields = dict(data.items())
    for name in ESTIMATOR_FIELDS:
        if name in fields:
            fields[name] = _array(fields[name], data.shape)
    zne = "evs_noise_factors" in fields  # IBM's ZNE results have per-factor errors instead
    if "ensemble_standard_error" not in fields and "stds" in fields and not zne:
        fields["ensemble_standard_error"] = fields["stds"].copy()
    return type(pub)(DataBin(shape=data.shape, **fields), metadata=pub.metadata)


def _array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float array of ``shape`` (a scalar becomes a 0-d array)."""
    array = np.asarray(value, dtype=float)
    return array.reshape(shape) if array.size == int(np.prod(shape)) else array
