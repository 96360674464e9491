"""The default detector: calibrated members that fail differently, fused by a rule not fitted
to any data.

Members, each a Detector of its own in its own file:

- ``spike``: a point far from what was expected, for its level or its hour of the day;
- ``counts``: the same on ``log(1 + value)``, while the series has no negative value, for
  bursty counts and noise that grows with the level;
- ``shift``: a run of residuals on one side (EWMA and CUSUM), for shifts and slow drifts.

Each reports a surprise, ``-log10`` of its tail probability on this series. The fusion is the
largest, less ``log10`` of the number of members (Bonferroni: a tail probability for having
looked several times), then one event, one alarm. No weight is learned, so nothing in it
was fitted to NAB or any other corpus. A member restarts its run at the fusion's alarm.

The members' kernels run in one compiled call per batch, on views into the ensemble's buffers:
the analyze pass scores ten thousand series of a few points each, where calls cost more than
arithmetic.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import njit

from selfmend.detect import shift, spike
from selfmend.detect.calibrated import CalibratedDetector, hold_all, layout
from selfmend.detect.params import CalibratedParams

MEMBER_ARRAYS = ("model", "season", "tails", "seen", "event")
MEMBERS = ("spike", "counts", "shift")


def _looked(params: CalibratedParams) -> float:
    """The Bonferroni term: log10 of the number of members."""
    return math.log10(1 + params.counts + params.shift)


def _members(
    params: CalibratedParams,
) -> list[tuple[str, type[CalibratedDetector], CalibratedParams]]:
    own = params.model_copy(update={"alarm": params.alarm + _looked(params)})
    chosen = [("spike", spike.SpikeDetector, own)]
    if params.counts:
        chosen.append(("counts", spike.SpikeDetector, own.model_copy(update={"log": True})))
    if params.shift:
        chosen.append(("shift", shift.ShiftDetector, own))
    return chosen


# The knobs as the compiled fusion takes them, in one float array.
BINS, TAU_LEVEL, TAU_SEASON, TAU_TAIL, CLIP, WARMUP, ALARM, HOLD, BREAKTHROUGH = range(9)
EWMA_RATE, CUSUM_SLACK, COUNTS, SHIFT, LOOKED = range(9, 14)


class Plan(NamedTuple):
    """Per member and array (``MEMBERS`` by ``MEMBER_ARRAYS``, then ``output``): its buffer,
    start and stop; and the knobs."""

    where: np.ndarray
    knobs: np.ndarray


@lru_cache(maxsize=64)
def _plan(params: CalibratedParams) -> Plan:
    places = layout(EnsembleDetector, params).places
    rows = [
        places.get(f"{member}.{array}", (0, 0, 0)) for member in MEMBERS for array in MEMBER_ARRAYS
    ]
    p = params
    knobs = [p.bins, p.tau_level, p.tau_season, p.tau_tail, p.clip, p.warmup, p.alarm, p.hold,
             p.breakthrough, p.ewma_rate, p.cusum_slack, p.counts, p.shift, _looked(p)]  # fmt: skip
    return Plan(np.array([*rows, places["output"]], dtype=np.int64), np.array(knobs, dtype=float))


class EnsembleDetector(CalibratedDetector):
    name = "ensemble"

    @classmethod
    def initial(cls, params: CalibratedParams) -> dict[str, np.ndarray]:
        return {
            f"{label}.{key}": array
            for label, kind, own in _members(params)
            for key, array in kind.initial(own).items()
        }

    def score_many(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        plan = _plan(self.params)
        ts, x = np.asarray(timestamps, dtype=float), np.asarray(values, dtype=float)
        scores = _run(ts, x, *self.buffers, plan.where, plan.knobs)
        self._as_saved()
        return scores

    def band(self) -> tuple[float, float] | None:
        a = self.arrays
        _, _, own = _members(self.params)[0]
        return spike.band(a["spike.model"], a["spike.season"], a["spike.tails"], own, own.alarm)


@njit(cache=True)
def _view(exact, counts, narrow, row):
    if row[0] == 0:
        return exact[row[1] : row[2]]
    if row[0] == 1:
        return counts[row[1] : row[2]]
    return narrow[row[1] : row[2]]


@njit(cache=True)
def _member(ts, x, exact, counts, narrow, where, m, knobs, log):
    """Member ``m``'s surprises, its kernel run on views into the buffers."""
    r = m * len(MEMBER_ARRAYS)
    model = _view(exact, counts, narrow, where[r])
    season = _view(exact, counts, narrow, where[r + 1])
    tails = _view(exact, counts, narrow, where[r + 2])
    seen = _view(exact, counts, narrow, where[r + 3])
    event = _view(exact, counts, narrow, where[r + 4])
    k = knobs
    alarm = k[ALARM] + k[LOOKED]  # the fusion's, for the member
    common = (int(k[BINS]), k[TAU_LEVEL], k[TAU_SEASON], k[TAU_TAIL], k[CLIP], k[WARMUP], alarm)
    if m == 2:
        return shift.run(ts, x, model, season, tails, seen, event, *common, k[HOLD],
                         k[BREAKTHROUGH], k[EWMA_RATE], k[CUSUM_SLACK])  # fmt: skip
    return spike.run(ts, x, model, season, tails, seen, event, *common, k[HOLD], k[BREAKTHROUGH],
                     log)  # fmt: skip


@njit(cache=True)
def _run(ts, x, exact, counts, narrow, where, knobs):
    """The fused scores of a batch: each member's surprises, the largest less log10 of their
    number, held to one alarm an event."""
    found = _member(ts, x, exact, counts, narrow, where, 0, knobs, False)
    if knobs[COUNTS] > 0.0:
        found = np.maximum(found, _member(ts, x, exact, counts, narrow, where, 1, knobs, True))
    if knobs[SHIFT] > 0.0:
        found = np.maximum(found, _member(ts, x, exact, counts, narrow, where, 2, knobs, False))
    found = np.maximum(found - knobs[LOOKED], 0.0)
    output = _view(exact, counts, narrow, where[len(MEMBERS) * len(MEMBER_ARRAYS)])
    held = hold_all(found, output, knobs[ALARM], knobs[HOLD], knobs[BREAKTHROUGH])
    return held / (held + knobs[ALARM])
