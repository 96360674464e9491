"""Calibration: how improbable a statistic's value is on this series, as ``-log10`` of a tail
probability, the same scale on every series whatever its units, noise or tail.

Peaks over threshold (Siffer et al., "Anomaly detection in streams with extreme value theory",
KDD 2017): values of a statistic above ``BASE`` are exceedances. The series' own rate of them
and a generalised Pareto fit of their excesses (method of moments, shape bounded) give

    p(a) = rate * (1 + shape * (a - BASE) / scale) ** (-1 / shape)

so a heavy-tailed series (bursty counts) needs a larger value for the same surprise than a
Gaussian one, and one whose errors are always small is surprised sooner. Below ``BASE`` the
surprise rises linearly to that of ``BASE``. All statistics here are residuals in units of the
series' own spread (mean absolute deviation), where ``BASE = 2`` is exceeded by about one point
in nine on Gaussian noise: enough exceedances to fit on in a day of samples.

A statistic that averages, such as an EWMA or a CUSUM, exceeds in runs. For those each run
counts once, by its largest value, learned when the run ends: the runs method of declustering
(Smith and Weissman, 1994), and the rate is that of runs beginning. Without it a lasting shift
teaches the tail its own size point by point, faster than the statistic builds, and is never
found. A point residual is not declustered: on a smooth series it stays beyond ``BASE`` for
hours, one rare run whose every point would then look improbable.

A fit made on the many small exceedances does not see a second population of large ones (a
disk that bursts every few hours, a load balancer's spikes): it calls each burst improbable,
every time. So the surprise is also read off the values seen (``judged``): the share of recent
points at least as far out, counted in bins that grow by sqrt(2), the point itself included (a
conformal p-value, Vovk et al.), and the smaller of the two surprises wins. Within the range
seen the counts speak; beyond it, the share of a single point, then the fit's fall from the
farthest value seen. A burst the series has had before is no longer news; a new extreme is.

The estimates decay with the caller's rate, so the tail describes the series' recent weeks. A
tail is ``TAIL`` floats at ``k`` in the caller's state array, its counts ``SEEN``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

BASE = 2.0
TAIL = 5  # run rate, runs seen, mean excess, mean squared excess, the current run's peak
MAX_SURPRISE = 12.0  # one in 10**12: beyond this no series has the history to say more
SHAPE_BOUNDS = (-0.25, 0.5)  # from light (bounded) to heavy tails with a finite variance
PRIOR = (0.1, 4.0, 1.0, 2.0, 0.0)  # a tenth beyond BASE, unit exponential excesses, 4 runs' worth
_LN10 = math.log(10.0)


def new_tails(count: int) -> np.ndarray:
    return np.tile(np.array(PRIOR), count)


@njit(cache=True)
def _fit(tail, k):
    """The tail at ``k`` as its surprise at ``BASE`` and the fitted shape and scale of its
    excesses (method of moments, the shape bounded)."""
    at_base = -math.log10(max(tail[k], 1e-9))
    mean, square = tail[k + 2], tail[k + 3]
    variance = max(square - mean * mean, 1e-12)
    shape = min(max(0.5 * (1.0 - mean * mean / variance), SHAPE_BOUNDS[0]), SHAPE_BOUNDS[1])
    return at_base, shape, max(mean * (1.0 - shape), 1e-9)


@njit(cache=True)
def surprise(tail, k, a):
    """-log10 of the probability of a value of at least ``a``, from the tail at ``k``."""
    at_base, shape, scale = _fit(tail, k)
    if a <= BASE:
        return at_base * max(a, 0.0) / BASE
    excess = a - BASE
    if abs(shape) < 1e-6:
        log_survival = -excess / scale
    else:
        base = 1.0 + shape * excess / scale
        if base <= 0.0:
            return MAX_SURPRISE
        log_survival = -math.log(base) / shape
    return min(MAX_SURPRISE, at_base - log_survival / _LN10)


@njit(cache=True)
def value_at(tail, k, level):
    """The smallest statistic whose surprise reaches ``level``: the inverse of ``surprise``."""
    at_base, shape, scale = _fit(tail, k)
    if level <= at_base:
        return BASE * level / max(at_base, 1e-9)
    log_survival = -(level - at_base) * _LN10
    if abs(shape) < 1e-6:
        return BASE - scale * log_survival
    return BASE + scale * (math.exp(-shape * log_survival) - 1.0) / shape


@njit(cache=True)
def learn(tail, k, a, rate, cap, runs):
    """Count ``a`` into the tail at ``k``; ``rate`` is the weight of one point, and ``runs``
    says the statistic is autocorrelated by construction (declustered: each run counts once).

    A value beyond the surprise ``cap`` (the alarm) counts as the value at it: an anomaly
    teaches the tail that alarming values happen, not its own size, which would make the next
    one look ordinary. Recurring bursts still widen the tail step by step, as each raises the
    value at the cap a little."""
    if a > BASE:  # only an exceedance can pass the cap
        a = min(a, value_at(tail, k, cap))
    if runs:
        if a > BASE:
            starts = tail[k + 4] == 0.0
            tail[k] += rate * ((1.0 if starts else 0.0) - tail[k])
            tail[k + 4] = max(tail[k + 4], a)
            return
        tail[k] -= rate * tail[k]
        if tail[k + 4] == 0.0:
            return
        a, tail[k + 4] = tail[k + 4], 0.0  # a run ended: its peak is one exceedance
    else:
        hit = a > BASE
        tail[k] += rate * ((1.0 if hit else 0.0) - tail[k])
        if not hit:
            return
    tail[k + 1] += 1.0
    # exceedances are rarer than points: weigh each so the fit spans the same time
    weight = max(min(rate / max(tail[k], rate), 0.5), 1.0 / tail[k + 1])
    excess = a - BASE
    tail[k + 2] += weight * (excess - tail[k + 2])
    tail[k + 3] += weight * (excess * excess - tail[k + 3])


# The values seen, counted: bins from 0.5 spreads growing by sqrt(2), then all points. The
# counts forget with the tail's rate but keep at most SEEN_SPAN points: a share is resolved to
# one in 50,000 (the fitted tail speaks beyond it), and the counts fit a float16 in the state.
SEEN_FIRST, SEEN_RATIO, SEEN_BINS, SEEN_SPAN = 0.5, math.sqrt(2.0), 16, 50_000.0
SEEN = SEEN_BINS + 1


def new_seen(count: int) -> np.ndarray:
    return np.zeros(SEEN * count)


@njit(cache=True)
def _seen_bin(a):
    if a < SEEN_FIRST:
        return -1
    return min(int(math.log(a / SEEN_FIRST) / math.log(SEEN_RATIO)), SEEN_BINS - 1)


@njit(cache=True)
def _edge(b):
    return SEEN_FIRST * SEEN_RATIO**b


@njit(cache=True)
def seen_surprise(seen, k, scale, tail, t, a, fitted):
    """-log10 of the share of points seen lately at least as far out as ``a``, the point itself
    counted: a conformal p-value. Within a bin the share is interpolated geometrically between
    its edges; past the farthest value seen, it falls as the fitted tail does (``fitted`` is
    the fitted surprise of ``a``). The counts are ``scale`` times the points (see ``see``)."""
    b = _seen_bin(a)
    if b < 0:
        return 0.0
    from_bin = 0.0  # points in bin b and beyond
    for j in range(b, SEEN_BINS):
        from_bin += seen[k + j]
    from_bin /= scale
    total = seen[k + SEEN_BINS] / scale + 1.0
    if from_bin >= 0.5:
        above = from_bin - seen[k + b] / scale  # points beyond bin b
        if above < 0.5:  # nothing seen past this bin: the fitted tail's fall across it
            fall = surprise(tail, t, _edge(b + 1)) - surprise(tail, t, _edge(b))
            above = from_bin * 10.0 ** -max(fall, 0.0)
        into = min(math.log(a / _edge(b)) / math.log(SEEN_RATIO), 1.0)
        lower, upper = math.log10(from_bin + 1.0), math.log10(above + 1.0)
        return min(MAX_SURPRISE, math.log10(total) - ((1.0 - into) * lower + into * upper))
    reach = _edge(b)  # beyond every bin seen: the share of one point, then the fitted fall
    for j in range(b - 1, -1, -1):
        if seen[k + j] >= 0.5 * scale:
            reach = _edge(j + 1)
            break
    fall = fitted - surprise(tail, t, reach)
    return min(MAX_SURPRISE, math.log10(total) + max(fall, 0.0))


@njit(cache=True)
def judged(tail, t, seen, k, scale, a):
    """The surprise of ``a``: the fitted tail's, or less where the values seen say less."""
    fitted = surprise(tail, t, a)
    if a <= BASE:  # the fit's ramp below its base: no value there is news
        return fitted
    return min(fitted, seen_surprise(seen, k, scale, tail, t, a, fitted))


@njit(cache=True)
def see(seen, k, scales, s, a, rate, weight):
    """Count ``a`` as ``weight`` points (less than one for a statistic that averages, so a run
    counts about once, as in the fitted tail), the older counts decaying at ``rate``.

    Rather than decay every bin at every point, the new count is made larger by the same factor
    (``scales[s]``, the counts' unit within a batch), and ``settle`` divides it out at the end:
    one bin touched per point instead of all."""
    scales[s] /= 1.0 - max(rate, 1.0 / SEEN_SPAN)
    if scales[s] > 1e100:  # long batches with large steps: settle before the unit overflows
        settle(seen, k, scales, s)
    b = _seen_bin(a)
    if b >= 0:
        seen[k + b] += weight * scales[s]
    seen[k + SEEN_BINS] += weight * scales[s]


@njit(cache=True)
def settle(seen, k, scales, s):
    """Counts back in points, as saved: the end of a batch of ``see``."""
    for j in range(SEEN):
        seen[k + j] /= scales[s]
    scales[s] = 1.0
