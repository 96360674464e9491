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

from selfmend.detect import stream_kernel as kernel
from selfmend.detect.base import Timed
from selfmend.detect.params import StreamParams
from selfmend.detect.state import pack, unpack
from selfmend.sensitivity import scaled_threshold

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

    def threshold_at(self, sensitivity: float) -> float:
        """The ratio to its record a statistic must reach (1 at the default) is divided by
        ``sensitivity ** (1/4)`` (``selfmend.sensitivity``): 1.78 at 0.1, 0.56 at 10.
        Above 1, the points an event holds just under the alarm (``refractory``) alarm too, so
        stored anomalies grow faster than events."""
        return scaled_threshold(  # the ratio of a score, and the score of a ratio
            self.threshold, sensitivity, lambda t: t / (1 - t), lambda r: r / (1 + r)
        )

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
