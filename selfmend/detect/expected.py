"""What a point is expected to be: a robust level, and a baseline per hour of the day used while
it predicts the series better than the level does.

Both are exponentially weighted with time constants in seconds, not points, so a series sampled
every 15 s and one sampled hourly forget over the same span: the level over ``tau_level``, each
hour of the day over ``tau_season``. Residuals are Huber-clipped at ``clip`` spreads before they
are learned, so one outlier cannot drag the level. After an alarm the caller passes ``fast``,
the weight of a point in a run that has just restarted (a change point): the level relearns from
the points after the change rather than over a day.

State: ``MODEL`` floats (indices below; timestamps among them, so kept as float64), and
``season``: per hour of the day its baseline, then its points seen.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DAY = 86400.0
N, LEVEL, SPREAD, SEASON_SPREAD, FIRST_TS, LAST_TS, LAST_VALUE, STEP = range(8)
MODEL = 8
SEASON_AFTER = 2 * DAY  # a daily baseline needs two days before it can be compared
RELATIVE_FLOOR = 1e-3  # spreads below a thousandth of the level are taken as that: flat lines
# and none below the series' resolution, its smallest step between two points: a value that
# moves by one step (a CPU reading rounded to 0.002, a count by one) is one spread away


def new_model() -> np.ndarray:
    return np.zeros(MODEL)


def new_season(bins: int) -> np.ndarray:
    return np.zeros(2 * bins)


@njit(cache=True)
def phase(ts, bins):
    return int(((ts % DAY) / DAY) * bins) % bins


@njit(cache=True)
def _floor(model, spread, level):
    return max(spread, RELATIVE_FLOOR * max(1.0, abs(level)), model[STEP])


@njit(cache=True)
def center(model, season, ts, bins):
    """The value expected at ``ts``, its spread, and whether it is the baseline of its hour
    (used once that hour is learned and while it predicts better than the level)."""
    b = phase(ts, bins)
    base, seen = season[b], season[bins + b]
    if seen >= 2 and ts - model[FIRST_TS] >= SEASON_AFTER and model[SEASON_SPREAD] < model[SPREAD]:
        return base, _floor(model, model[SEASON_SPREAD], base), True
    return model[LEVEL], _floor(model, model[SPREAD], model[LEVEL]), False


@njit(cache=True)
def residual(model, season, ts, x, bins):
    """``x``'s signed residual in spreads, and whether the hour's baseline was used."""
    middle, spread, seasonal = center(model, season, ts, bins)
    return (x - middle) / spread, seasonal


@njit(cache=True)
def point_rate(model, ts, tau):
    """The weight of the next point for a time constant ``tau``: its share of ``tau`` since the
    last point, and a plain average while fewer points than that have been seen."""
    if model[N] == 0:
        return 1.0
    step = max(ts - model[LAST_TS], 0.0)
    return min(max(step / tau, 1.0 / (model[N] + 1.0)), 0.5)


@njit(cache=True)
def _clip(value, limit):
    return min(max(value, -limit), limit)


@njit(cache=True)
def learn(model, season, ts, x, bins, tau_level, tau_season, clip, fast):
    rate = point_rate(model, ts, tau_level)
    if model[N] == 0:
        model[LEVEL] = x
        model[FIRST_TS] = ts
    else:
        error = x - model[LEVEL]
        clipped = error if model[N] < 3 else _clip(error, clip * max(model[SPREAD], 1e-12))
        model[LEVEL] += max(rate, fast) * (error if fast > 0.0 else clipped)
        model[SPREAD] += rate * (abs(clipped) - model[SPREAD])
        step = abs(x - model[LAST_VALUE])
        if step > 0.0 and (model[STEP] == 0.0 or step < model[STEP]):
            model[STEP] = step
    b = phase(ts, bins)
    seen = season[bins + b]
    if seen == 0:
        season[b] = x
    else:
        error = x - season[b]
        clipped = error if seen < 3 else _clip(error, clip * max(model[SEASON_SPREAD], 1e-12))
        visits = max(ts - model[LAST_TS], 0.0) * bins  # this hour's share of the season
        season_rate = min(max(visits / tau_season, 1.0 / (seen + 1.0)), 0.5)
        season[b] += max(season_rate, fast) * (error if fast > 0.0 else clipped)
        if seen >= 2:
            model[SEASON_SPREAD] += rate * (abs(clipped) - model[SEASON_SPREAD])
    season[bins + b] = min(seen + 1.0, 255.0)
    model[N] += 1.0
    model[LAST_TS] = ts
    model[LAST_VALUE] = x
