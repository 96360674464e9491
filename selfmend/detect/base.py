"""The Detector protocol, after river's anomaly detectors, plus a vectorized ``score_many``.

A sample carries its timestamp and value, because seasonal detectors need the time. A high
score is indicative of an anomaly; scores lie in [0, 1]. State is plain attributes that
round-trip through JSON (``to_state`` / ``from_state``), saved per series in the store so any
worker resumes where the last one stopped.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Self

import numpy as np
from pydantic import BaseModel


class Timed(Protocol):
    """Anything with a time and a value: a ``Point``, or a ``selfmend.models.Sample``."""

    @property
    def ts(self) -> float: ...

    @property
    def value(self) -> float: ...


class Point(NamedTuple):
    ts: float
    value: float


class Detector(Protocol):
    name: str
    params: BaseModel  # validated, frozen: equal parameters mean saved state still applies

    @property
    def threshold(self) -> float:
        """The score from which a point is an anomaly."""

    def threshold_at(self, sensitivity: float) -> float:
        """The alarm threshold on this detector's score for that sensitivity (about that many
        times the default rate of alarms on normal data; ``selfmend.sensitivity``);
        ``threshold_at(1.0) == threshold``."""

    def learn_one(self, sample: Timed) -> None:
        """Add one point to what is normal."""

    def score_one(self, sample: Timed) -> float:
        """How anomalous one point is against what was learned, without learning it."""

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Score then learn each point in order: point i is scored on the points before it."""

    def clone(self) -> Detector:
        """An independent copy, to score ahead without touching this state."""

    def band(self) -> tuple[float, float] | None:
        """The values that would not be anomalies now, or None before enough is known."""

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, parameters included."""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild from ``to_state``'s output."""
