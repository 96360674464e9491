"""Rolling median/MAD: a robust level detector that a few outliers cannot drag along.

The score of a point is how many robust standard deviations (1.4826 * MAD) it lies from the
median of the last ``window`` points, mapped to [0, 1] by a two-sided normal probability with
the spread doubled, a margin for the heavy tails real metrics have: 0.99 ≈ 5.2 robust sigmas.
A history of whole numbers (counts) is never given a spread below half a unit, so a count that
moves by one from a flat run is not an anomaly.

The window is kept sorted as points come and go, so each point costs O(window) in the numba
kernel rather than a sort.
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Self

import numpy as np
from numba import njit

from selfmend.detect.base import Timed
from selfmend.detect.params import MADParams
from selfmend.detect.state import pack, unpack
from selfmend.sensitivity import scaled_threshold

MAD_TO_SIGMA = 1.4826
_SQRT8 = math.sqrt(8.0)
_NORMAL = NormalDist()


class RollingMAD:
    name = "rolling_mad"

    def __init__(self, params: MADParams | None = None, **knobs: Any) -> None:
        self.params = params or MADParams(**knobs)
        self.values = np.zeros(0)

    @property
    def threshold(self) -> float:
        return self.params.threshold

    def threshold_at(self, sensitivity: float) -> float:
        """The robust z a point must reach is divided by ``sensitivity ** (1/4)``
        (``selfmend.sensitivity``): at the default 0.99, z 5.15 becomes 9.2 at 0.1 and
        2.9 at 10."""
        return scaled_threshold(self.threshold, sensitivity, _z_of_score, _score_of_z)

    def learn_one(self, sample: Timed) -> None:
        self.score_many(np.array([sample.ts], float), np.array([sample.value], float))

    def score_one(self, sample: Timed) -> float:
        probe = self.clone()  # one scoring path, this state untouched
        return float(probe.score_many(np.array([sample.ts], float), np.array([sample.value]))[0])

    def clone(self) -> RollingMAD:
        twin = copy.copy(self)  # the frozen params are shared
        twin.values = self.values.copy()
        return twin

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        p = self.params
        scores, self.values = _run(self.values, values, p.window, p.min_points, p.min_spread)
        return scores

    def band(self, k: float = 5.0) -> tuple[float, float] | None:
        """The normal band, median ± k robust sigmas, once enough points are known."""
        if self.values.size < self.params.min_points:
            return None
        ordered = np.sort(self.values)
        median, spread = _median_and_spread(ordered, _integral(ordered), self.params.min_spread)
        width = k * MAD_TO_SIGMA * spread
        return median - width, median + width

    def to_state(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "params": self.params.model_dump(exclude_defaults=True),
            "size": int(self.values.size),
            "values": pack(self.values),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(_params(json.dumps(state["params"], sort_keys=True)))
        detector.values = unpack(state["values"], state["size"])
        return detector


def _score_of_z(z: float) -> float:
    return math.erf(z / _SQRT8)


def _z_of_score(score: float) -> float:
    """The inverse of ``_score_of_z``: erf(z / sqrt 8) = 2 * Phi(z / 2) - 1."""
    return 2.0 * _NORMAL.inv_cdf((1.0 + score) / 2.0)


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values % 1 == 0))


@njit(cache=True)
def _run(history, values, window, min_points, min_spread):
    """Score each value on the window before it, then slide it in; returns the new window."""
    ring = np.empty(window)  # chronological, oldest at `start`
    ordered = np.empty(window)
    size = min(history.size, window)
    ring[:size] = history[history.size - size :]
    ordered[:size] = np.sort(ring[:size])
    fractional = 0
    for j in range(size):
        fractional += ring[j] % 1 != 0
    start = 0
    scores = np.zeros(values.size)
    for i in range(values.size):
        v = values[i]
        if size >= min_points:
            median, spread = _median_and_spread(ordered[:size], fractional == 0, min_spread)
            z = abs(v - median) / (MAD_TO_SIGMA * spread)
            scores[i] = math.erf(z / _SQRT8)
        if size == window:
            oldest = ring[start]
            fractional -= oldest % 1 != 0
            _remove(ordered, size, oldest)
            size -= 1
            ring[start] = v
            start = (start + 1) % window
        else:
            ring[(start + size) % window] = v
        _insert(ordered, size, v)
        size += 1
        fractional += v % 1 != 0
    chronological = np.empty(size)
    for j in range(size):
        chronological[j] = ring[(start + j) % window]
    return scores, chronological


@njit(cache=True)
def _median_and_spread(ordered, integral, min_spread):
    """Median and MAD of a sorted window, floored: never zero, half a unit for counts."""
    n = ordered.size
    median = 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])
    # The deviations |x - median| in increasing order come from walking outwards from the
    # middle of the sorted window: merge the two sides until the median deviation is reached.
    left, right = (n - 1) // 2, n // 2
    if left == right:
        right += 1
    lower, upper = 0.0, 0.0
    for k in range(n // 2 + 1):
        take_left = right >= n or (left >= 0 and median - ordered[left] <= ordered[right] - median)
        deviation = median - ordered[left] if take_left else ordered[right] - median
        if take_left:
            left -= 1
        else:
            right += 1
        if k == (n - 1) // 2:
            lower = deviation
        if k == n // 2:
            upper = deviation
    spread = 0.5 * (lower + upper)
    if integral:
        spread = max(spread, 0.5)
    return median, max(spread, min_spread * max(1.0, abs(median)))


@njit(cache=True)
def _remove(ordered, size, value):
    for k in range(np.searchsorted(ordered[:size], value), size - 1):
        ordered[k] = ordered[k + 1]


@njit(cache=True)
def _insert(ordered, size, value):
    k = size
    while k > 0 and ordered[k - 1] > value:
        ordered[k] = ordered[k - 1]
        k -= 1
    ordered[k] = value


@lru_cache(maxsize=64)
def _params(text: str) -> MADParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return MADParams.model_validate_json(text)
