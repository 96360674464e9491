"""The streaming detector's numba kernel: one pass, constant state, score before learn.

Per point, three statistics measure surprise in units of the series' own spread:

- **level**: distance from a Huber-clipped exponentially weighted mean, over its weighted mean
  absolute deviation (a robust level that one outlier cannot drag along);
- **seasonal**: distance from the baseline of the same phase of the day, used only while that
  baseline predicts the series better than the level does (``season_gain``);
- **change point**: an EWMA of the signed standardised residual (a level shift shows as a run
  of same-signed residuals long before any one of them is extreme) and a two-sided CUSUM.

Each statistic is calibrated against a slowly decaying record of its own past values on this
stream, so the score means "how surprising, compared with the most surprising point lately",
whatever the series' scale or noise. The largest ratio becomes the score ``r / (1 + r)``. After
a score reaches ``alarm``, scores stay below it for ``refractory`` points: one event raises one
alarm. The structure and defaults are chosen on NAB (``python -m bench.nab.explore``).

State lives in two float64 arrays owned by the caller: ``scalars`` (indices below) and
``bins`` (per phase: baseline, then points seen).
"""

from __future__ import annotations

import numpy as np
from numba import njit

DAY = 86400.0

SEEN = 0
LEVEL = 1
SPREAD = 2
SEASON_SPREAD = 3
LEVEL_ERROR = 4
SEASON_ERROR = 5
RECORD_LEVEL = 6
RECORD_SEASON = 7
RECORD_SHIFT = 8
RECORD_CUSUM = 9
SHIFT = 10
CUSUM_UP = 11
CUSUM_DOWN = 12
SINCE_ALARM = 13
SCALARS = 14


def new_scalars() -> np.ndarray:
    scalars = np.zeros(SCALARS)
    scalars[SINCE_ALARM] = 1e18
    return scalars


@njit(cache=True)
def _clip(value, limit):
    return min(max(value, -limit), limit)


@njit(cache=True)
def run(ts, x, scalars, bins, n_bins, window, clip, season_rate, decay, floor, warmup, alarm,
        refractory, season_gain, shift_rate, shift_weight, cusum_slack, cusum_weight,
        use_season, use_change):  # fmt: skip
    """Score each point on the state before it, then learn it; updates the state in place."""
    n = len(x)
    out = np.zeros(n)
    shift_norm = np.sqrt((2 - shift_rate) / shift_rate)
    s = scalars
    for i in range(n):
        v = x[i]
        b = int(((ts[i] % DAY) / DAY) * n_bins) % n_bins
        seen_bin = bins[n_bins + b]
        score = 0.0
        if s[SEEN] >= warmup:
            level_scale = max(s[SPREAD], 1e-3 * max(1.0, abs(s[LEVEL])))
            signed = (v - s[LEVEL]) / level_scale
            z_level = abs(signed)
            better = s[SEASON_ERROR] < s[LEVEL_ERROR] * season_gain
            seasonal = use_season and seen_bin >= 2 and better
            z_season = 0.0
            if seasonal:
                season_scale = max(s[SEASON_SPREAD], 1e-3 * max(1.0, abs(bins[b])))
                signed = (v - bins[b]) / season_scale
                z_season = abs(signed)
            ratio = z_level / max(s[RECORD_LEVEL], floor)
            if seasonal:
                ratio = max(ratio, z_season / max(s[RECORD_SEASON], floor))
                s[RECORD_SEASON] = max(s[RECORD_SEASON] * decay, z_season)
            s[RECORD_LEVEL] = max(s[RECORD_LEVEL] * decay, z_level)
            if use_change:
                bounded = _clip(signed, 10.0)
                s[SHIFT] = (1 - shift_rate) * s[SHIFT] + shift_rate * bounded
                z_shift = abs(s[SHIFT]) * shift_norm
                s[CUSUM_UP] = max(0.0, s[CUSUM_UP] + bounded - cusum_slack)
                s[CUSUM_DOWN] = max(0.0, s[CUSUM_DOWN] - bounded - cusum_slack)
                z_cusum = max(s[CUSUM_UP], s[CUSUM_DOWN])
                ratio = max(ratio, shift_weight * z_shift / max(s[RECORD_SHIFT], floor))
                ratio = max(ratio, cusum_weight * z_cusum / max(s[RECORD_CUSUM], floor))
                s[RECORD_SHIFT] = max(s[RECORD_SHIFT] * decay, z_shift)
                s[RECORD_CUSUM] = max(s[RECORD_CUSUM] * decay, z_cusum)
            score = ratio / (1.0 + ratio)
            s[SINCE_ALARM] += 1
            if s[SINCE_ALARM] < refractory:
                score = min(score, alarm * 0.999)
            elif score >= alarm:
                s[SINCE_ALARM] = 0
        out[i] = score
        _learn(s, bins, b, v, n_bins, window, clip, season_rate, warmup)
    return out


@njit(cache=True)
def _learn(s, bins, b, v, n_bins, window, clip, season_rate, warmup):
    s[SEEN] += 1
    seen = s[SEEN]
    rate = 1.0 / min(seen, window)
    residual = v - s[LEVEL]
    if seen == 1:
        s[LEVEL] = v
    else:
        limit = clip * max(s[SPREAD], 1e-9)
        clipped = _clip(residual, limit) if seen > warmup else residual
        s[LEVEL] += rate * clipped
        s[SPREAD] += rate * (abs(clipped) - s[SPREAD])
        s[LEVEL_ERROR] += rate * (abs(residual) - s[LEVEL_ERROR])
    seen_bin = bins[n_bins + b]
    if seen_bin == 0:
        bins[b] = v
    else:
        residual = v - bins[b]
        limit = clip * max(s[SEASON_SPREAD], 1e-9)
        clipped = _clip(residual, limit) if seen_bin >= 3 else residual
        if seen_bin >= 2:
            s[SEASON_ERROR] += rate * (abs(residual) - s[SEASON_ERROR])
        bins[b] += max(season_rate, 1.0 / (seen_bin + 1)) * clipped
        s[SEASON_SPREAD] += rate * (abs(clipped) - s[SEASON_SPREAD])
    bins[n_bins + b] = min(seen_bin + 1, 255.0)
