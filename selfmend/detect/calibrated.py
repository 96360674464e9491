"""What the calibrated detectors share: a score that is the same tail probability everywhere.

A calibrated detector's kernel returns each point's surprise, ``-log10`` of how probable a value
at least that unusual is on this series (``selfmend.detect.tail``). The score maps it to [0, 1)
as ``surprise / (surprise + alarm)``, so 0.5 is the alarm on every series and sensitivity has an
exact meaning: ``threshold_at(s)`` is where the tail probability is ``s`` times the default's.

State is named float arrays, saved as float32 (seven digits, plenty for decayed estimates)
but for ``model`` and ``event``, which hold timestamps and counters: the ensemble keeps under
2 KB a series.
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from typing import Any, ClassVar, Self

import numpy as np
from numba import njit

from selfmend.detect.base import Timed
from selfmend.detect.params import CalibratedParams
from selfmend.detect.state import pack, unpack

DEFAULTS = CalibratedParams()
SINCE, AT = 0, 1  # event state: points since the last alarm, and that alarm's surprise
HELD = 1e-3  # a held point's surprise sits this far below the alarm
EXACT = ("model", "event")  # arrays saved as float64


def new_event() -> np.ndarray:
    return np.array([1e9, 0.0])


@njit(cache=True)
def hold_event(event, surprise, alarm, hold, breakthrough):
    """One event, one alarm: the surprise to report, and whether the point belongs to an event
    (the alarm and the ``hold`` points after it, which are not learned as normal)."""
    since = event[SINCE] + 1.0
    if since < hold and surprise < event[AT] + breakthrough:
        event[SINCE] = since
        return min(surprise, alarm - HELD), True
    if surprise >= alarm:
        event[SINCE] = 0.0
        event[AT] = surprise
        return surprise, True
    event[SINCE] = since
    return surprise, False


@njit(cache=True)
def relearn_weight(event, hold):
    """After an alarm the run restarts: the k-th point after it weighs 1 / (k + 1)."""
    since = event[SINCE]
    return 1.0 / (since + 1.0) if 1.0 <= since < hold else 0.0


class CalibratedDetector:
    """Subclasses name their arrays (``_new_arrays``) and compute surprises (``_surprise``)."""

    name: ClassVar[str]

    def __init__(self, params: CalibratedParams | None = None, **knobs: Any) -> None:
        self.params = params or (CalibratedParams(**knobs) if knobs else DEFAULTS)
        self.arrays = self._new_arrays()

    def _new_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _surprise(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        return 0.5

    def threshold_at(self, sensitivity: float) -> float:
        """The score at which the alarm's tail probability is ``sensitivity`` times the
        default's: 10 alarms on ten times the points, 0.1 on a tenth."""
        alarm = self.params.alarm
        wanted = max(alarm - math.log10(sensitivity), 1e-6)
        return wanted / (wanted + alarm)

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        surprise = self._surprise(np.asarray(timestamps, float), np.asarray(values, float))
        return surprise / (surprise + self.params.alarm)

    def learn_one(self, sample: Timed) -> None:
        self.score_many(np.array([sample.ts], float), np.array([sample.value], float))

    def score_one(self, sample: Timed) -> float:
        probe = self.clone()  # one scoring path, this state untouched
        return float(probe.score_many(np.array([sample.ts], float), np.array([sample.value]))[0])

    def clone(self) -> Self:
        twin = copy.copy(self)  # the frozen params are shared
        twin.arrays = {key: array.copy() for key, array in self.arrays.items()}
        return twin

    def band(self) -> tuple[float, float] | None:
        return None

    def to_state(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "params": self.params.model_dump(exclude_defaults=True),
            "arrays": {
                key: pack(array, "<f8" if key.endswith(EXACT) else "<f4")
                for key, array in self.arrays.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        given = state["params"]
        detector = cls(_params(json.dumps(given, sort_keys=True)) if given else DEFAULTS)
        for key, array in detector.arrays.items():
            detector.arrays[key] = unpack(state["arrays"][key], array.size)
        return detector


@lru_cache(maxsize=64)
def _params(text: str) -> CalibratedParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return CalibratedParams.model_validate_json(text)
