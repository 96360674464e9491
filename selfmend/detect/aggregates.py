"""What a metric condition computes over a window of samples, and how it compares the result."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Literal

import numpy as np

Aggregate = Literal["last", "mean", "min", "max", "p50", "p95", "p99", "count", "rate"]
Comparison = Literal[">", ">=", "<", "<="]

AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "last": lambda v: float(v[-1]),
    "mean": lambda v: float(np.mean(v)),
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
    "p50": lambda v: float(np.percentile(v, 50)),
    "p95": lambda v: float(np.percentile(v, 95)),
    "p99": lambda v: float(np.percentile(v, 99)),
    "count": lambda v: float(v.size),
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def aggregate(name: str, times: np.ndarray, values: np.ndarray) -> float:
    """The aggregate ``name`` of points oldest first: ``rate`` needs the times."""
    if name == "rate":
        return rate(times, values)
    return AGGREGATES[name](values)


def rate(times: np.ndarray, values: np.ndarray) -> float:
    """Per-second increase of a cumulative counter; a drop means it restarted from zero."""
    steps = np.diff(values)
    increase = float(np.where(steps >= 0, steps, values[1:]).sum())
    span = float(times[-1] - times[0])
    return increase / span if span > 0 else 0.0


def exact(number: float) -> str:
    """A threshold as written: ``1200000000``, ``0.8``, never rounded to ``1.2e+09``."""
    return str(int(number)) if number.is_integer() else repr(number)
