"""What the dashboard shows of a result: counts per register as bars, expectation values.

Pure functions over the stored result text (no Flask), so they are easy to test and the
dashboard's views stay thin. Bars are laid out here and drawn by the template as SVG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: At most this many bars per histogram; the rest is summed into one "other" bar.
MAX_BARS = 32


@dataclass
class Bar:
    """One outcome's bar: its count and its box in the histogram's SVG coordinates."""

    label: str
    count: int
    x: float
    width: float
    height: float


@dataclass
class Histogram:
    """One classical register's counts as bars (``distinct`` outcomes, some maybe summed)."""

    register: str
    shots: int
    bars: list[Bar]
    width: float
    height: float
    distinct: int


@dataclass
class PubSummary:
    """What the job page shows of one pub: histograms (sampler) or evs/stds (estimator)."""

    index: int
    histograms: list[Histogram] = field(default_factory=list)
    evs: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    shape: tuple = ()


def histogram(
    register: str,
    counts: dict[str, int],
    height: float = 160.0,
    bar_width: float = 22.0,
    gap: float = 6.0,
) -> Histogram:
    """Bars of the most frequent outcomes, tallest first, scaled to ``height``."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > MAX_BARS:
        rest = sum(c for _, c in ranked[MAX_BARS - 1 :])
        ranked = ranked[: MAX_BARS - 1] + [(f"other ({len(counts) - MAX_BARS + 1})", rest)]
    top = max((c for _, c in ranked), default=1) or 1
    bars = [
        Bar(label, count, gap + i * (bar_width + gap), bar_width, height * count / top)
        for i, (label, count) in enumerate(ranked)
    ]
    return Histogram(
        register,
        sum(counts.values()),
        bars,
        gap + len(bars) * (bar_width + gap),
        height,
        len(counts),
    )


def _flat(values: Any) -> list[float]:
    """Any array-like of numbers as a flat list of floats."""
    import numpy as np

    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def summarize(result_text: str, max_values: int = 64) -> list[PubSummary]:
    """One summary per pub of a stored ``PrimitiveResult``; ``[]`` if it is not one."""
    from .codec import decode_result

    try:
        result = decode_result(result_text)
        pubs = list(result)
    except Exception:  # a failure message or a result from another program
        return []
    summaries = []
    for index, pub in enumerate(pubs):
        summary = PubSummary(index)
        data = pub.data
        for register in data.keys():  # noqa: SIM118  (a DataBin, not a dict)
            value = data[register]
            if hasattr(value, "get_counts"):
                summary.histograms.append(histogram(register, value.get_counts()))
        if "evs" in data:
            summary.shape = tuple(getattr(data["evs"], "shape", ()))
            summary.evs = _flat(data["evs"])[:max_values]
            if "stds" in data:
                summary.stds = _flat(data["stds"])[:max_values]
        summaries.append(summary)
    return summaries
