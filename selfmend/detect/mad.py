"""Rolling median/MAD: a robust level detector that a few outliers cannot drag along.

The score of a point is how many robust standard deviations (1.4826 * MAD) it lies from the
median of the last ``window`` points, mapped to [0, 1] by a two-sided normal probability with
the spread doubled, a margin for the heavy tails real metrics have: 0.99 ≈ 5.2 robust sigmas.
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
        history = np.asarray(self.values)
        median = float(np.median(history))
        spread = float(np.median(np.abs(history - median)))
        return self._score(value, median, spread)

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
            medians = np.nanmedian(ready_histories, axis=1)
            spreads = np.nanmedian(np.abs(ready_histories - medians[:, None]), axis=1)
            scores[ready] = self._score_array(values[ready], medians, spreads)
        self.values = series[-self.window :].tolist()
        return scores

    def _score(self, value: float, median: float, spread: float) -> float:
        return float(
            self._score_array(np.array([value]), np.array([median]), np.array([spread]))[0]
        )

    def _score_array(
        self, values: np.ndarray, medians: np.ndarray, spreads: np.ndarray
    ) -> np.ndarray:
        floor = self.min_spread * np.maximum(1.0, np.abs(medians))
        sigma = MAD_TO_SIGMA * np.maximum(spreads, floor)
        z = np.abs(values - medians) / sigma
        return erf(z / _SQRT8)

    def band(self, k: float = 5.0) -> tuple[float, float] | None:
        """The normal band, median ± k robust sigmas, once enough points are known."""
        if len(self.values) < self.min_points:
            return None
        history = np.asarray(self.values)
        median = float(np.median(history))
        spread = max(
            float(np.median(np.abs(history - median))), self.min_spread * max(1.0, abs(median))
        )
        return median - k * MAD_TO_SIGMA * spread, median + k * MAD_TO_SIGMA * spread

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
