"""The spike member: how improbable a point's distance from what was expected is, on this series.

The residual against the expected value (``selfmend.detect.expected``: the level, or the hour's
baseline when that predicts better) in spreads, calibrated by the series' own past residuals
(``selfmend.detect.tail``: a fitted tail and the values seen), one for each baseline. With
``log`` it models ``log(1 + value)``: counts and metrics whose noise grows with their level
(requests, mentions, bytes) have multiplicative spikes, and a burst from 2 to 40 is as unusual
as one from 200 to 4,000. A negative value ends that view: from then on the member scores 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from selfmend.detect import expected, tail
from selfmend.detect.calibrated import (
    CalibratedDetector,
    hold_event,
    member_arrays,
    relearn_weight,
)
from selfmend.detect.params import CalibratedParams

NEGATIVE = 2  # in the event array: a negative value was seen (log members stop)


class SpikeDetector(CalibratedDetector):
    name = "spike"

    @classmethod
    def initial(cls, params: CalibratedParams) -> dict[str, np.ndarray]:
        return member_arrays(params, 2, 1)

    def _surprise(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        return run(timestamps, values, *self._member_arguments(), self.params.log)

    def band(self) -> tuple[float, float] | None:
        a = self.arrays
        return band(a["model"], a["season"], a["tails"], self.params, self.params.alarm)


def band(
    model, season, tails, params: CalibratedParams, alarm: float
) -> tuple[float, float] | None:
    """Values around the current expectation whose fitted surprise stays below ``alarm``."""
    if model[expected.N] < params.warmup or params.log:
        return None
    middle, spread, seasonal = expected.center(model, season, model[expected.LAST_TS], params.bins)
    width = spread * tail.value_at(tails, tail.TAIL if seasonal else 0, alarm)
    return float(middle - width), float(middle + width)


@njit(cache=True)
def run(ts, x, model, season, tails, seen, event, bins, tau_level, tau_season, tau_tail, clip,
        warmup, alarm, hold, breakthrough, log):  # fmt: skip
    """Each point's surprise on the state before it; then it is learned. State in place."""
    out = np.zeros(len(x))
    scales = np.ones(2)  # the units of the two counts of values seen, within this batch
    for i in range(len(x)):
        v = x[i]
        if log:
            if v < 0.0 or event[NEGATIVE] > 0.0:
                event[NEGATIVE] = 1.0
                continue
            v = math.log1p(v)
        if model[expected.N] >= warmup:
            r, seasonal = expected.residual(model, season, ts[i], v, bins)
            k = tail.TAIL if seasonal else 0
            s = 1 if seasonal else 0
            found = tail.judged(tails, k, seen, s * tail.SEEN, scales[s], abs(r))
            hold_event(event, found, alarm, hold, breakthrough)  # for what is relearned
            rate = expected.point_rate(model, ts[i], tau_tail)
            tail.learn(tails, k, abs(r), rate, alarm, False)
            tail.see(seen, s * tail.SEEN, scales, s, abs(r), rate, 1.0)
            out[i] = found
        fast = relearn_weight(event, hold)
        expected.learn(model, season, ts[i], v, bins, tau_level, tau_season, clip, fast)
    for s in range(2):
        tail.settle(seen, s * tail.SEEN, scales, s)
    return out
