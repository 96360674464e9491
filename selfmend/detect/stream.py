"""The default detector: level, daily seasonal baseline and change point, calibrated into one score.

``StreamParams`` are the knobs, validated so a bad one is named; their defaults were chosen on
NAB and are the same for every series. The numeric work is ``stream_kernel.run``; this class
holds its state, keeps the Detector protocol and saves the state in under 2 KB of JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from selfmend.detect import stream_kernel as kernel
from selfmend.detect.base import Timed
from selfmend.detect.state import pack, unpack


class StreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bins: int = Field(48, ge=1, le=288, description="Phases of the day in the seasonal baseline.")
    window: int = Field(675, ge=2, description="Points the level and spreads average over.")
    clip: float = Field(2.54, gt=0, description="Residuals beyond this many spreads are clipped.")
    season_rate: float = Field(0.28, gt=0, le=1, description="How fast a phase's baseline moves.")
    decay: float = Field(0.99987, gt=0, lt=1, description="Per-point decay of the surprise record.")
    floor: float = Field(4.69, gt=0, description="The smallest record a surprise is measured by.")
    warmup: int = Field(89, ge=2, description="Points learned before any score above 0.")
    alarm: float = Field(0.585, gt=0, lt=1, description="The score that is an anomaly.")
    refractory: int = Field(27, ge=0, description="Points after an alarm held below it.")
    season_gain: float = Field(0.54, gt=0, description="The seasonal baseline's error must be "
                               "below this fraction of the level's before it is used.")  # fmt: skip
    shift_rate: float = Field(0.034, gt=0, lt=1, description="Weight of a point in the shift EWMA.")
    shift_weight: float = Field(1.42, ge=0, description="Weight of the shift statistic.")
    cusum_slack: float = Field(1.0, ge=0, description="Spreads per point the CUSUM forgives.")
    cusum_weight: float = Field(1.0, ge=0, description="Weight of the CUSUM statistic.")
    seasonal: bool = Field(True, description="Use the seasonal baseline.")
    change_point: bool = Field(True, description="Use the shift and CUSUM statistics.")


class StreamDetector:
    name = "stream"

    def __init__(self, params: StreamParams | None = None, **knobs: Any) -> None:
        self.params = params or StreamParams(**knobs)
        self.scalars = kernel.new_scalars()
        self.bins = np.zeros(2 * self.params.bins)

    @property
    def threshold(self) -> float:
        return self.params.alarm

    def learn_one(self, sample: Timed) -> None:
        self._run(np.array([sample.ts], dtype=float), np.array([sample.value], dtype=float))

    def score_one(self, sample: Timed) -> float:
        probe = StreamDetector(self.params)  # one scoring path, this state untouched
        probe.scalars, probe.bins = self.scalars.copy(), self.bins.copy()
        return float(probe._run(np.array([sample.ts], float), np.array([sample.value], float))[0])

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(timestamps, dtype=float), np.asarray(values, dtype=float))

    def _run(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        p = self.params
        return kernel.run(
            timestamps, values, self.scalars, self.bins, p.bins, p.window, p.clip,
            p.season_rate, p.decay, p.floor, p.warmup, p.alarm, p.refractory, p.season_gain,
            p.shift_rate, p.shift_weight, p.cusum_slack, p.cusum_weight, p.seasonal,
            p.change_point,
        )  # fmt: skip

    def band(self) -> tuple[float, float] | None:
        """Values around the level that would score below ``alarm``, once past warmup."""
        if self.scalars[kernel.SEEN] < self.params.warmup:
            return None
        ratio = self.params.alarm / (1 - self.params.alarm)
        record = max(self.scalars[kernel.RECORD_LEVEL], self.params.floor)
        level = float(self.scalars[kernel.LEVEL])
        spread = max(self.scalars[kernel.SPREAD], 1e-3 * max(1.0, abs(level)))
        width = float(ratio * record * spread)
        return level - width, level + width

    def to_state(self) -> dict[str, Any]:
        n = self.params.bins
        return {
            "detector": self.name,
            "params": self.params.model_dump(exclude_defaults=True),
            "scalars": pack(self.scalars),
            "baseline": pack(self.bins[:n]),
            "seen": pack(self.bins[n:], "u1"),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(_params(json.dumps(state["params"], sort_keys=True)))
        n = detector.params.bins
        detector.scalars = unpack(state["scalars"], kernel.SCALARS)
        detector.bins = np.concatenate([unpack(state["baseline"], n), unpack(state["seen"], n)])
        return detector


@lru_cache(maxsize=64)
def _params(text: str) -> StreamParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return StreamParams.model_validate_json(text)
