"""What the calibrated detectors share: a score that is the same tail probability everywhere.

A calibrated detector's kernel returns each point's surprise, ``-log10`` of how probable a value
at least that unusual is on this series (``selfmend.detect.tail``). The score maps it to [0, 1)
as ``surprise / (surprise + alarm)``, so 0.5 is the alarm on every series and sensitivity has a
meaning: ``threshold_at(s)`` is where the estimated tail probability is ``s`` times the
default's. The estimate errs towards less surprise: 10 gives 1.4-2.5 times the alarms.

State is named float arrays, saved at the precision each needs (``BLOBS``): the ensemble's
is about 1.8 KB a series.
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
from numba import njit

from selfmend.detect import expected, tail
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


def member_arrays(params: CalibratedParams, statistics: int, own: int) -> dict[str, np.ndarray]:
    """A member's arrays: what it expects, a fitted tail and the values seen for each of its
    ``statistics``, and its event with ``own`` more floats of the member's."""
    return {
        "model": expected.new_model(),
        "season": expected.new_season(params.bins),
        "tails": tail.new_tails(statistics),
        "seen": tail.new_seen(statistics),
        "event": np.append(new_event(), np.zeros(own)),
    }


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


class Layout(NamedTuple):
    """Where each named array sits in a detector's buffers, one buffer per blob of ``BLOBS``:
    the state saves and loads each buffer whole, and the kernels get views into them."""

    places: dict[str, tuple[int, int, int]]  # name: buffer, start, stop
    initial: tuple[np.ndarray, ...]  # each buffer as a new detector has it


@lru_cache(maxsize=64)
def layout(kind: type[CalibratedDetector], params: CalibratedParams) -> Layout:
    """A detector kind's layout for these parameters, worked out once: a restored detector
    takes views into its buffers and builds nothing."""
    arrays = {**kind.initial(params), "output": new_event()}
    places: dict[str, tuple[int, int, int]] = {}
    parts: list[list[np.ndarray]] = [[] for _ in BLOBS]
    for key, array in arrays.items():
        blob = next(i for i, (_, _, ends) in enumerate(BLOBS) if key.endswith(ends))
        start = sum(part.size for part in parts[blob])
        places[key] = (blob, start, start + array.size)
        parts[blob].append(np.asarray(array, dtype=float))
    return Layout(places, tuple(np.concatenate(part) if part else np.zeros(0) for part in parts))


class CalibratedDetector:
    """Subclasses name their arrays and first values (``initial``) and compute each point's
    surprise (``_surprise``), using their own event only to decide what to learn."""

    name: ClassVar[str]

    def __init__(self, params: CalibratedParams | None = None, **knobs: Any) -> None:
        self.params = params or (CalibratedParams(**knobs) if knobs else DEFAULTS)
        self._use([buffer.copy() for buffer in layout(type(self), self.params).initial])

    def _use(self, buffers: list[np.ndarray]) -> None:
        self.buffers = buffers
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays, views into the buffers, made when first asked for: the analyze pass
        restores and clones ten thousand detectors a pass and an ensemble needs only buffers."""
        if self._arrays is None:
            places = layout(type(self), self.params).places
            self._arrays = {
                key: self.buffers[b][start:stop] for key, (b, start, stop) in places.items()
            }
        return self._arrays

    @classmethod
    def initial(cls, params: CalibratedParams) -> dict[str, np.ndarray]:
        """The detector's own arrays as a new one has them; ``output`` (the reported event)
        is added to them."""
        raise NotImplementedError

    def _surprise(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _member_arguments(self) -> tuple[Any, ...]:
        """What every member kernel takes after the points: its arrays, then the shared knobs."""
        p, a = self.params, self.arrays
        arrays = (a["model"], a["season"], a["tails"], a["seen"], a["event"])
        knobs = (p.bins, p.tau_level, p.tau_season, p.tau_tail, p.clip, p.warmup, p.alarm, p.hold)
        return (*arrays, *knobs, p.breakthrough)

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
        self._as_saved()
        return held / (held + p.alarm)

    def _as_saved(self) -> None:
        """Round the state to the precision it is saved at, after every batch: a worker that
        kept this detector in memory and one that restored it from the store then continue
        alike, to the last bit."""
        for (_, dtype, _), buffer in zip(BLOBS, self.buffers, strict=True):
            if dtype != "<f8":
                buffer[:] = buffer.astype(dtype)

    def learn_one(self, sample: Timed) -> None:
        self.score_many(np.array([sample.ts], float), np.array([sample.value], float))

    def score_one(self, sample: Timed) -> float:
        probe = self.clone()  # one scoring path, this state untouched
        return float(probe.score_many(np.array([sample.ts], float), np.array([sample.value]))[0])

    def clone(self) -> Self:
        twin = copy.copy(self)  # the frozen params are shared
        twin._use([buffer.copy() for buffer in self.buffers])
        return twin

    def band(self) -> tuple[float, float] | None:
        return None

    def to_state(self) -> dict[str, Any]:
        """One blob per precision (``BLOBS``): a blob per array would spend a quarter of the
        2 KB on keys and framing."""
        state = {"detector": self.name, "params": _dumped(self.params)}
        for (blob, dtype, _), buffer in zip(BLOBS, self.buffers, strict=True):
            state[blob] = pack(buffer, dtype)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        given = state["params"]
        detector = cls.__new__(cls)
        detector.params = _params(json.dumps(given, sort_keys=True)) if given else DEFAULTS
        sizes = [buffer.size for buffer in layout(cls, detector.params).initial]
        detector._use(
            [unpack(state[blob], size) for (blob, _, _), size in zip(BLOBS, sizes, strict=True)]
        )
        return detector


@lru_cache(maxsize=64)
def _dumped(params: CalibratedParams) -> dict[str, Any]:
    return params.model_dump(exclude_defaults=True)


@lru_cache(maxsize=64)
def _params(text: str) -> CalibratedParams:
    """Parameters of saved state, validated once per distinct set rather than once per series."""
    return CalibratedParams.model_validate_json(text)
