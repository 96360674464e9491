"""The Detector protocol, after river's anomaly detectors, plus a vectorized ``score_many``.

A high score is indicative of an anomaly; scores lie in [0, 1]. State is plain attributes that
round-trip through JSON (``to_state`` / ``from_state``), saved per series in the store so any
worker resumes where the last one stopped.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

import numpy as np


class Detector(Protocol):
    name: str

    def learn_one(self, ts: float, value: float) -> None:
        """Add one point to what is normal."""

    def score_one(self, ts: float, value: float) -> float:
        """How anomalous one point is against what was learned, without learning it."""

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Score then learn each point in order: point i is scored on the points before it."""

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, parameters included."""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild from ``to_state``'s output."""
