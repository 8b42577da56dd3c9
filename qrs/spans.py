"""Execution spans: when the data of each pub was taken, as IBM's Sampler results say.

IBM's Sampler results carry ``metadata["execution"]["execution_spans"]``, an
``ExecutionSpans`` that the job-monitoring guide reads with ``mask``, ``filter_by_pub``,
``start``, ``stop``, ``duration`` and ``sort``. Untwirled Sampler data is indexed by
(parameter binding, shot), which is IBM's ``DoubleSliceSpan``: a span covers a slice of a
pub's flattened bindings and a slice of its shots. A span is built from the pub results
it covers, so an executor only needs the times around the work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

SPANS_KEY = "execution_spans"


def utc_now() -> datetime:
    """Span times are timezone-aware UTC, as IBM's are."""
    return datetime.now(timezone.utc)


def is_sampler_pub_result(pub_result: Any) -> bool:
    """Whether a pub result is a Sampler's (its data is counted in shots)."""
    from qiskit.primitives import SamplerPubResult

    return isinstance(pub_result, SamplerPubResult)


def pub_shots(pub_result: Any) -> int:
    """Shots of a Sampler pub result: from its bit arrays, else its metadata."""
    for value in pub_result.data.values():
        if hasattr(value, "num_shots"):
            return int(value.num_shots)
    return int(pub_result.metadata.get("shots", 0))


def data_span(start: datetime, stop: datetime, pub_results: Mapping[int, Any]) -> Any:
    """One ``DoubleSliceSpan`` saying that all data of these pubs (by index) was taken
    between ``start`` and ``stop``."""
    from qiskit_ibm_runtime.execution_span import DoubleSliceSpan

    slices = {}
    for index, pub_result in pub_results.items():
        shape, shots = tuple(pub_result.data.shape), pub_shots(pub_result)
        slices[int(index)] = ((*shape, shots), slice(0, math.prod(shape)), slice(0, shots))
    return DoubleSliceSpan(start, stop, slices)


def execution_metadata(spans: list[Any]) -> dict[str, Any]:
    """The ``metadata["execution"]`` entry for ``spans`` (nothing when there are none)."""
    from qiskit_ibm_runtime.execution_span import ExecutionSpans

    return {"execution": {SPANS_KEY: ExecutionSpans(spans)}} if spans else {}


def has_spans(metadata: Mapping[str, Any]) -> bool:
    """Whether a result's metadata already says when its data was taken."""
    execution = metadata.get("execution")
    return isinstance(execution, Mapping) and SPANS_KEY in execution
