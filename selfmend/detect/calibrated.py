"""What the calibrated detectors share: a score that is the same tail probability everywhere.

A calibrated detector's kernel returns each point's surprise, ``-log10`` of how probable a value
at least that unusual is on this series (``selfmend.detect.tail``). The score maps it to [0, 1)
as ``surprise / (surprise + alarm)``, so 0.5 is the alarm on every series and sensitivity has an
exact meaning: ``threshold_at(s)`` is where the tail probability is ``s`` times the default's.

State is named float arrays, saved at the precision each needs (``BLOBS``): the ensemble's
is about 1.8 KB a series.
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
from selfmend.sensitivity import HIGHEST as HIGHEST_SENSITIVITY

DEFAULTS = CalibratedParams()
SINCE, AT = 0, 1  # event state: points since the last alarm, and that alarm's surprise
# a held point's surprise sits below the alarm of the highest sensitivity a series may have, so
# a sensitive series stores an event's first point, not every point of its hold
HELD = math.log10(HIGHEST_SENSITIVITY) + 1e-3
# How each array is saved, by the end of its name: timestamps and counters exactly, the counts
# of values seen (at most 50,000, to three digits) as float16, the rest (decayed estimates,
# seven digits) as float32
BLOBS = (
    ("exact", "<f8", ("model", "event", "output")),
    ("counts", "<f2", ("seen",)),
    ("narrow", "<f4", ("",)),
)


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
def hold_all(surprises, event, alarm, hold, breakthrough):
    out = np.empty(len(surprises))
    for i in range(len(surprises)):
        out[i], _ = hold_event(event, surprises[i], alarm, hold, breakthrough)
    return out


@njit(cache=True)
def relearn_weight(event, hold):
    """After an alarm the run restarts: the k-th point after it weighs 1 / (k + 1)."""
    since = event[SINCE]
    return 1.0 / (since + 1.0) if 1.0 <= since < hold else 0.0


class CalibratedDetector:
    """Subclasses name their arrays (``_new_arrays``) and compute each point's surprise
    (``_surprise``), using their own event only to decide what to learn."""

    name: ClassVar[str]

    def __init__(self, params: CalibratedParams | None = None, **knobs: Any) -> None:
        self.params = params or (CalibratedParams(**knobs) if knobs else DEFAULTS)
        self.arrays = {**self._new_arrays(), "output": new_event()}

    def _new_arrays(self) -> dict[str, np.ndarray]:
        """The detector's own arrays; ``output`` (the reported event) is added to them."""
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
        """The surprises, one event one alarm, as scores. The hold is applied here, on what the
        detector reports, not inside a kernel: an ensemble fuses its members' raw surprises."""
        surprise = self._surprise(np.asarray(timestamps, float), np.asarray(values, float))
        p = self.params
        held = hold_all(surprise, self.arrays["output"], p.alarm, p.hold, p.breakthrough)
        return held / (held + p.alarm)

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
        """The arrays in one blob per precision (``BLOBS``), in the order the detector builds
        them: a blob per array would spend a quarter of the 2 KB on keys and framing."""
        state = {"detector": self.name, "params": self.params.model_dump(exclude_defaults=True)}
        for (blob, dtype, _), keys in zip(BLOBS, self._split(), strict=True):
            state[blob] = pack(np.concatenate([self.arrays[k] for k in keys]), dtype)
        return state

    def _split(self) -> list[list[str]]:
        """The array names of each blob: the first blob whose suffixes the name ends with."""
        split: list[list[str]] = [[] for _ in BLOBS]
        for key in self.arrays:
            split[next(i for i, (_, _, ends) in enumerate(BLOBS) if key.endswith(ends))].append(key)
        return split

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        given = state["params"]
        detector = cls(_params(json.dumps(given, sort_keys=True)) if given else DEFAULTS)
        for (blob, _, _), keys in zip(BLOBS, detector._split(), strict=True):
            sizes = [detector.arrays[key].size for key in keys]
            values = unpack(state[blob], sum(sizes))
            for key, part in zip(keys, np.split(values, np.cumsum(sizes)[:-1]), strict=True):
                detector.arrays[key] = part.copy()
        return detector


@lru_cache(maxsize=64)
def _params(text: str) -> CalibratedParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return CalibratedParams.model_validate_json(text)
