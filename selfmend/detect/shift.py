"""The shift member: a run of residuals on one side, none of them extreme (a level shift, a dip
that lasts, a slow climb), which the spike member sees only once it is large.

Two textbook change statistics of the signed residual (clipped at ``clip`` spreads so one spike
cannot pass for a shift): an EWMA with weight ``ewma_rate``, scaled by its stationary standard
deviation, and a two-sided CUSUM with slack ``cusum_slack``. Each is calibrated by its own tail;
the member reports the more surprising, less log10(2) for having looked twice (Bonferroni).
After an alarm both restart from zero, as the run they measured has ended.
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

EWMA, UP, DOWN, NOISE = 2, 3, 4, 5  # in the event array, after the event's own two
LOOKS = math.log10(3.0)


class ShiftDetector(CalibratedDetector):
    name = "shift"

    @classmethod
    def initial(cls, params: CalibratedParams) -> dict[str, np.ndarray]:
        return member_arrays(params, 3, 4)

    def _surprise(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        p = self.params
        return run(timestamps, values, *self._member_arguments(), p.ewma_rate, p.cusum_slack)


@njit(cache=True)
def run(ts, x, model, season, tails, seen, event, bins, tau_level, tau_season, tau_tail, clip,
        warmup, alarm, hold, breakthrough, ewma_rate, slack):  # fmt: skip
    out = np.zeros(len(x))
    stats = np.zeros(3)
    scales = np.ones(3)  # the units of the three counts of values seen, within this batch
    norm = math.sqrt((2.0 - ewma_rate) / ewma_rate)
    memory = ewma_rate / (2.0 - ewma_rate)  # an EWMA value is 1 / this points' worth of news
    for i in range(len(x)):
        v = x[i]
        if model[expected.N] >= warmup:
            r, _ = expected.residual(model, season, ts[i], v, bins)
            r = min(max(r, -clip), clip)
            event[EWMA] += ewma_rate * (r - event[EWMA])
            event[UP] = max(0.0, event[UP] + r - slack)
            event[DOWN] = max(0.0, event[DOWN] - r - slack)
            event[NOISE] += ewma_rate * (abs(r) - event[NOISE])
            ewma, cusum = abs(event[EWMA]) * norm, max(event[UP], event[DOWN])
            noise = max(event[NOISE] - 1.0, 0.0) * norm
            stats[0], stats[1], stats[2] = ewma, cusum, noise
            found = 0.0
            for j in range(3):
                found = max(
                    found,
                    tail.judged(tails, j * tail.TAIL, seen, j * tail.SEEN, scales[j], stats[j]),
                )
            found = max(found - LOOKS, 0.0)
            _, in_event = hold_event(event, found, alarm, hold, breakthrough)
            rate = expected.point_rate(model, ts[i], tau_tail)
            for j in range(3):
                tail.learn(tails, j * tail.TAIL, stats[j], rate * memory, alarm, True)
                tail.see(seen, j * tail.SEEN, scales, j, stats[j], rate, memory)
            if in_event and event[0] == 0.0:  # this point alarmed: the run it measured has ended
                event[EWMA] = event[UP] = event[DOWN] = 0.0
                event[NOISE] = 1.0
            out[i] = found
        fast = relearn_weight(event, hold)
        expected.learn(model, season, ts[i], v, bins, tau_level, tau_season, clip, fast)
    for j in range(3):
        tail.settle(seen, j * tail.SEEN, scales, j)
    return out
