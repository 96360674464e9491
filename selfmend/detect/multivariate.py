"""Multivariate detection: a service's series together, through scikit-learn's IsolationForest.

A service's series move together (requests and CPU, queue depth and latency), so a moment can be
ordinary on every series and still wrong for the combination: CPU at its usual peak while
requests are at their nightly low. Each pass lines the series up in time buckets (each series'
last value in the bucket, standardised by its own median and MAD), fits an IsolationForest on
the older rows and scores the newest. Fit on a batch, it follows scikit-learn's conventions and
keeps no state between passes: the history lives in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ServiceVerdict:
    score: float  # the newest row's anomaly score, in (0, 1]; above 0.5 is less normal than usual
    anomalous: bool
    deviations: dict[str, float]  # per series, the newest row's robust z: which ones moved


class ServiceForest:
    """Scores the newest moment of a service's series against their joint history."""

    def __init__(
        self,
        bucket_seconds: float = 60.0,
        min_rows: int = 30,
        threshold: float = 0.65,
        trees: int = 100,
        seed: int = 0,
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self.min_rows = min_rows
        self.threshold = threshold
        self.trees = trees
        self.seed = seed

    def judge(self, windows: Mapping[str, Sequence[tuple[float, float]]]) -> ServiceVerdict | None:
        """The newest bucket's verdict; None with fewer than two series or too little history."""
        keys, rows = self.rows(windows)
        if len(keys) < 2 or len(rows) < self.min_rows + 1:
            return None
        centre = np.median(rows[:-1], axis=0)
        spread = MAD_TO_SIGMA * np.median(np.abs(rows[:-1] - centre), axis=0)
        scaled = (rows - centre) / np.maximum(spread, 1e-9 * np.maximum(1.0, np.abs(centre)))
        forest = IsolationForest(n_estimators=self.trees, random_state=self.seed)
        forest.fit(scaled[:-1])
        score = float(-forest.score_samples(scaled[-1:])[0])
        deviations = {key: float(scaled[-1, j]) for j, key in enumerate(keys)}
        return ServiceVerdict(score, score >= self.threshold, deviations)

    def rows(
        self, windows: Mapping[str, Sequence[tuple[float, float]]]
    ) -> tuple[list[str], np.ndarray]:
        """One row per bucket in which every series has a value, oldest first."""
        keys = sorted(key for key, points in windows.items() if points)
        buckets: dict[float, list[float]] = {}
        for j, key in enumerate(keys):
            for ts, value in windows[key]:
                row = buckets.setdefault(ts // self.bucket_seconds, [np.nan] * len(keys))
                row[j] = value  # points come oldest first: the bucket keeps the last
        complete = [buckets[b] for b in sorted(buckets) if not np.isnan(buckets[b]).any()]
        return keys, np.array(complete, dtype=float).reshape(len(complete), len(keys))
