"""Percentiles, in milliseconds, the way every table of this harness shows them."""

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return math.nan
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def summarize(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max and mean of samples in seconds, as milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}

    def ms(value: float) -> float:
        return round(value * 1000, 1)

    return {
        "n": len(ordered),
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1]),
        "mean": ms(sum(ordered) / len(ordered)),
    }
