"""Rolling median/MAD: a robust level detector that a few outliers cannot drag along.

The score of a point is how many robust standard deviations (1.4826 * MAD) it lies from the
median of the last ``window`` points, mapped to [0, 1] by a two-sided normal probability with
the spread doubled, a margin for the heavy tails real metrics have: 0.99 ≈ 5.2 robust sigmas.
A history of whole numbers (counts) is never given a spread below half a unit, so a count that
moves by one from a flat run is not an anomaly.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf

MAD_TO_SIGMA = 1.4826
_SQRT8 = math.sqrt(8.0)


class RollingMAD:
    name = "rolling_mad"

    def __init__(self, window: int = 120, min_points: int = 20, min_spread: float = 1e-3) -> None:
        if window < 8:
            raise ValueError(f"window must be at least 8 points, got {window}")
        if not 2 <= min_points <= window:
            raise ValueError(
                f"min_points must be between 2 and window ({window}), got {min_points}"
            )
        self.window = window
        self.min_points = min_points
        self.min_spread = min_spread
        self.values: list[float] = []

    def learn_one(self, ts: float, value: float) -> None:
        self.values.append(float(value))
        del self.values[: -self.window]

    def score_one(self, ts: float, value: float) -> float:
        if len(self.values) < self.min_points:
            return 0.0
        probe = RollingMAD.from_state(self.to_state())  # one scoring path, state untouched
        return float(probe.score_many(np.array([ts]), np.array([value]))[0])

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return np.zeros(0)
        known = np.asarray(self.values, dtype=float)
        series = np.concatenate([known, values])
        scores = np.zeros(values.size)
        # Row j of the view is the `window` points before series[j] (NaN where none were seen).
        padded = np.concatenate([np.full(self.window, np.nan), series])
        histories = sliding_window_view(padded, self.window)[known.size : known.size + values.size]
        counts = np.sum(~np.isnan(histories), axis=1)
        ready = counts >= self.min_points
        if ready.any():
            ready_histories = histories[ready]
            medians, spreads = self._centre_and_spread(ready_histories)
            scores[ready] = self._score_array(values[ready], medians, spreads)
        self.values = series[-self.window :].tolist()
        return scores

    def _centre_and_spread(self, histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and MAD per row (NaN = not seen), floored: never zero, half a unit for counts."""
        medians = np.nanmedian(histories, axis=1)
        spreads = np.nanmedian(np.abs(histories - medians[:, None]), axis=1)
        integral = np.all(np.isnan(histories) | (histories % 1 == 0), axis=1)
        spreads = np.where(integral, np.maximum(spreads, 0.5), spreads)
        return medians, np.maximum(spreads, self.min_spread * np.maximum(1.0, np.abs(medians)))

    def _score_array(
        self, values: np.ndarray, medians: np.ndarray, spreads: np.ndarray
    ) -> np.ndarray:
        z = np.abs(values - medians) / (MAD_TO_SIGMA * spreads)
        return erf(z / _SQRT8)

    def band(self, k: float = 5.0) -> tuple[float, float] | None:
        """The normal band, median ± k robust sigmas, once enough points are known."""
        if len(self.values) < self.min_points:
            return None
        medians, spreads = self._centre_and_spread(np.asarray([self.values], dtype=float))
        median, width = float(medians[0]), k * MAD_TO_SIGMA * float(spreads[0])
        return median - width, median + width

    def to_state(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "window": self.window,
            "min_points": self.min_points,
            "min_spread": self.min_spread,
            "values": list(self.values),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(state["window"], state["min_points"], state["min_spread"])
        detector.values = [float(v) for v in state["values"]][-detector.window :]
        return detector
