"""The default detector: level, daily seasonal baseline and change point, calibrated into one score.

``StreamParams`` are the knobs, validated so a bad one is named; their defaults were chosen on
NAB and are the same for every series. The numeric work is ``stream_kernel.run``; this class
holds its state, keeps the Detector protocol and saves the state in under 2 KB of JSON.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.detect import stream_kernel as kernel
from selfmend.detect.base import Timed
from selfmend.detect.state import pack, unpack


class StreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bins: int = Field(48, ge=1, le=96, description="Phases of the day in the seasonal baseline.")
    window: int = Field(1230, ge=2, description="Points the level and spreads average over.")
    clip: float = Field(4.6, gt=0, description="Residuals beyond this many spreads are clipped.")
    season_rate: float = Field(0.4, gt=0, le=1, description="How fast a phase's baseline moves.")
    decay: float = Field(0.99982, gt=0, lt=1, description="Per-point decay of the records.")
    floor: float = Field(2.0, gt=0, description="The smallest record a statistic is measured by.")
    record_growth: float = Field(1.43, gt=1, description="How far an event may raise a record.")
    phase_decay: float = Field(0.983, gt=0, lt=1, description="Decay of a phase's level record.")
    warmup: int = Field(52, ge=2, description="Points learned before any score above 0.")
    refractory: int = Field(14, ge=0, description="Points after an alarm held below it.")
    breakthrough: float = Field(3.0, gt=1, description="Times the last alarm's ratio that "
                                "alarms again within the refractory period.")  # fmt: skip
    season_gain: float = Field(0.44, gt=0, description="The seasonal baseline's error must be "
                               "below this fraction of the level's before it is used.")  # fmt: skip
    margin: float = Field(1.18, gt=1, description="Times its record a statistic must exceed.")
    shift_rate: float = Field(0.089, gt=0, lt=1, description="Weight of a point in the EWMA.")
    shift_margin: float = Field(1.0, gt=0, description="The margin of the EWMA statistic.")
    cusum_slack: float = Field(0.5, ge=0, description="Spreads per point the CUSUM forgives.")
    seasonal: bool = Field(True, description="Use the seasonal baseline.")
    weekly: bool = Field(False, description="Adjust the daily baseline by day of the week.")
    week_rate: float = Field(0.005, gt=0, le=1, description="How fast a weekday's offset moves.")
    week_after: float = Field(2.0, ge=0, description="Weeks learned before the offsets count.")
    change_point: bool = Field(True, description="Use the EWMA and CUSUM statistics.")
    threshold: float = Field(0.5, gt=0, lt=1, description="The score that is an anomaly; 0.5 is "
                             "where a statistic exceeds its margin.")  # fmt: skip

    @model_validator(mode="after")
    def _growth_exceeds_margin(self) -> StreamParams:
        if self.record_growth <= self.margin:
            raise ValueError(
                f"record_growth ({self.record_growth}) must exceed margin ({self.margin}), or a "
                "lasting change alarms again after every refractory period"
            )
        return self


DEFAULTS = StreamParams()


class StreamDetector:
    name = "stream"

    def __init__(self, params: StreamParams | None = None, **knobs: Any) -> None:
        self.params = params or (StreamParams(**knobs) if knobs else DEFAULTS)
        self.scalars = kernel.new_scalars()
        self.bins = np.zeros(kernel.BIN_ARRAYS * self.params.bins)

    @property
    def threshold(self) -> float:
        return self.params.threshold

    def learn_one(self, sample: Timed) -> None:
        self._run(np.array([sample.ts], dtype=float), np.array([sample.value], dtype=float))

    def score_one(self, sample: Timed) -> float:
        probe = self.clone()  # one scoring path, this state untouched
        return float(probe._run(np.array([sample.ts], float), np.array([sample.value], float))[0])

    def clone(self) -> StreamDetector:
        twin = copy.copy(self)  # the frozen params are shared; building new arrays costs more
        twin.scalars, twin.bins = self.scalars.copy(), self.bins.copy()
        return twin

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(timestamps, dtype=float), np.asarray(values, dtype=float))

    def _run(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        p = self.params
        return kernel.run(
            timestamps, values, self.scalars, self.bins, p.bins, p.window, p.clip,
            p.season_rate, p.decay, p.floor, p.record_growth, p.phase_decay, p.warmup,
            p.refractory, p.breakthrough, p.season_gain, p.margin, p.shift_rate, p.shift_margin,
            p.cusum_slack, p.seasonal, p.change_point, p.weekly, p.week_rate, p.week_after,
        )  # fmt: skip

    def band(self) -> tuple[float, float] | None:
        """Values around the level whose spike statistic stays below its margin, past warmup."""
        if self.scalars[kernel.SEEN] < self.params.warmup:
            return None
        record = max(self.scalars[kernel.RECORDS + kernel.Z_LEVEL], self.params.floor)
        level = float(self.scalars[kernel.LEVEL])
        spread = max(self.scalars[kernel.SPREAD], 1e-3 * max(1.0, abs(level)))
        width = float(self.params.margin * record * spread)
        return level - width, level + width

    def to_state(self) -> dict[str, Any]:
        n = self.params.bins
        baseline, seen, phase_records = self.bins[:n], self.bins[n : 2 * n], self.bins[2 * n :]
        return {
            "detector": self.name,
            "params": self.params.model_dump(exclude_defaults=True),
            "floats": pack(np.concatenate([self.scalars, baseline, phase_records])),
            "seen": pack(seen, "u1"),  # counts up to 255 fit a byte
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        given = state["params"]
        detector = cls(_params(json.dumps(given, sort_keys=True)) if given else DEFAULTS)
        n, first_bin = detector.params.bins, kernel.SCALARS
        floats = unpack(state["floats"], first_bin + 2 * n)  # a fresh array: slices may keep it
        detector.scalars = floats[:first_bin]
        detector.bins = np.concatenate(
            [floats[first_bin : first_bin + n], unpack(state["seen"], n), floats[first_bin + n :]]
        )
        return detector


@lru_cache(maxsize=64)
def _params(text: str) -> StreamParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return StreamParams.model_validate_json(text)
