"""The streaming detector's numba kernel: one pass, constant state, score before learn.

Residuals, in units of the series' own spread:

- **level**: from a Huber-clipped exponentially weighted mean, over its weighted mean absolute
  deviation (a robust level that one outlier cannot drag along);
- **seasonal**: from the baseline of the same phase of the day, used only while that baseline
  predicts the series better than the level does (``season_gain``). With ``use_week``, a
  day-of-week offset is added to it once ``week_after`` weeks are learned (for a shop closed on
  Sundays). Off by default: on NAB, whose long series are traffic and ad exchanges, it costs
  about 2 points (81.5 against 83.6 standard), so it is for series known to have a week.

Statistics of the residual (the seasonal one while it is used):

- **spike**: the point's own |z|, against the level and against the seasonal baseline;
- **change point**: an EWMA of the signed residual and a two-sided CUSUM, for a run of
  same-signed residuals none of which is extreme (a level shift, a dip that lasts).

**Calibration.** Each statistic is compared with a slowly decaying record of its own past values
on this stream, so "surprising" means "beyond what this stream has done lately", whatever its
scale or noise. A point alarms when a statistic exceeds ``margin`` times its record
(``shift_margin`` for the EWMA); the score is ``r / (1 + r)`` of the largest such ratio r, so 0.5
is the alarm level. Two rules keep the records honest:

- an event does not teach its own size: the points of an alarmed event (the alarm and the
  ``refractory`` points after it) raise each record to at most ``record_growth`` times its value
  at the alarm. Otherwise one anomaly lifts the record so high that the next similar one looks
  ordinary. ``record_growth`` must exceed ``margin``, or a lasting change alarms again after
  every refractory period;
- spikes at the same time of day are normal: the level |z| is also measured against a record per
  phase of the day (the phase and its two neighbours), so a daily cron-job spike stops alarming
  once it has happened, while the global record stays low enough to see other spikes.

**Refractory.** After an alarm, scores stay below 0.5 for ``refractory`` points: one event raises
one alarm. A ratio ``breakthrough`` times the alarm's own still alarms, so a blip on noise cannot
hide the real fault that follows it. The structure and defaults are chosen on NAB with
``python -m bench.nab.explore``.

State lives in two float64 arrays owned by the caller: ``scalars`` (indices below) and ``bins``
(per phase of the day: baseline, points seen, level record).
"""

from __future__ import annotations

import numpy as np
from numba import njit

DAY = 86400.0
ALARM_RATIO = 1.0
HELD_RATIO = 0.997  # the ratio a refractory point is held to, just below an alarm

SEEN = 0
LEVEL = 1
SPREAD = 2
SEASON_SPREAD = 3
LEVEL_ERROR = 4
SEASON_ERROR = 5
SHIFT = 6
CUSUM_UP = 7
CUSUM_DOWN = 8
SINCE_ALARM = 9
ALARM_RATIO_AT = 10  # the ratio of the last alarm
RECORDS = 11  # four records, one per statistic, then the four caps of the current event
CAPS = RECORDS + 4
WEEK = CAPS + 4  # seven day-of-week offsets on the daily baseline, then the points behind each
FIRST_TS = WEEK + 14
SCALARS = FIRST_TS + 1
Z_LEVEL, Z_SEASON, Z_SHIFT, Z_CUSUM = range(4)
BIN_ARRAYS = 3  # baseline, points seen, level record


def new_scalars() -> np.ndarray:
    scalars = np.zeros(SCALARS)
    scalars[SINCE_ALARM] = 1e18
    return scalars


@njit(cache=True)
def _clip(value, limit):
    return min(max(value, -limit), limit)


@njit(cache=True)
def run(ts, x, s, bins, n_bins, window, clip, season_rate, decay, floor, growth, phase_decay,
        warmup, refractory, breakthrough, season_gain, margin, shift_rate, shift_margin,
        cusum_slack, use_season, use_change, use_week, week_rate, week_after):  # fmt: skip
    """Score each point on the state before it, then learn it; updates the state in place."""
    out = np.zeros(len(x))
    z = np.zeros(4)
    shift_norm = np.sqrt((2 - shift_rate) / shift_rate)
    baseline, seen, phase_record = bins[:n_bins], bins[n_bins : 2 * n_bins], bins[2 * n_bins :]
    for i in range(len(x)):
        v = x[i]
        b = int(((ts[i] % DAY) / DAY) * n_bins) % n_bins
        d = int(ts[i] // DAY + 4) % 7  # the epoch fell on a Thursday
        if s[SEEN] == 0:
            s[FIRST_TS] = ts[i]
        weeks = (ts[i] - s[FIRST_TS]) / (7 * DAY)
        offset = s[WEEK + d] if use_week and weeks >= week_after else 0.0
        if s[SEEN] >= warmup:
            level_scale = max(s[SPREAD], 1e-3 * max(1.0, abs(s[LEVEL])))
            signed = (v - s[LEVEL]) / level_scale
            z[Z_LEVEL] = abs(signed)
            better = s[SEASON_ERROR] < s[LEVEL_ERROR] * season_gain
            seasonal = use_season and seen[b] >= 2 and better
            z[Z_SEASON] = 0.0
            if seasonal:
                season_scale = max(s[SEASON_SPREAD], 1e-3 * max(1.0, abs(baseline[b])))
                signed = (v - baseline[b] - offset) / season_scale
                z[Z_SEASON] = abs(signed)
            usual = max(s[RECORDS + Z_LEVEL], floor, phase_record[(b - 1) % n_bins],
                        phase_record[b], phase_record[(b + 1) % n_bins])  # fmt: skip
            ratio = z[Z_LEVEL] / (margin * usual)
            if seasonal:
                ratio = max(ratio, z[Z_SEASON] / (margin * max(s[RECORDS + Z_SEASON], floor)))
            z[Z_SHIFT] = 0.0
            z[Z_CUSUM] = 0.0
            if use_change:
                signed = _clip(signed, 10.0)
                s[SHIFT] = (1 - shift_rate) * s[SHIFT] + shift_rate * signed
                s[CUSUM_UP] = max(0.0, s[CUSUM_UP] + signed - cusum_slack)
                s[CUSUM_DOWN] = max(0.0, s[CUSUM_DOWN] - signed - cusum_slack)
                z[Z_SHIFT] = abs(s[SHIFT]) * shift_norm
                z[Z_CUSUM] = max(s[CUSUM_UP], s[CUSUM_DOWN])
                shift_usual = shift_margin * max(s[RECORDS + Z_SHIFT], floor)
                ratio = max(ratio, z[Z_SHIFT] / shift_usual)
                ratio = max(ratio, z[Z_CUSUM] / (margin * max(s[RECORDS + Z_CUSUM], floor)))
            since = s[SINCE_ALARM] + 1
            stronger = ratio >= breakthrough * s[ALARM_RATIO_AT]
            if since < refractory and not stronger:
                ratio = min(ratio, HELD_RATIO)
            elif ratio >= ALARM_RATIO:
                since = 0
                s[ALARM_RATIO_AT] = ratio
                for k in range(4):
                    s[CAPS + k] = max(s[RECORDS + k], floor) * growth
            s[SINCE_ALARM] = since
            for k in range(4):
                if k != Z_SEASON or seasonal:
                    learned = min(z[k], s[CAPS + k]) if since < refractory else z[k]
                    s[RECORDS + k] = max(s[RECORDS + k] * decay, learned)
            phase_record[b] = max(phase_record[b] * phase_decay, z[Z_LEVEL])
            out[i] = ratio / (1.0 + ratio)
        if use_week and seen[b] >= 2:
            rate = max(week_rate, 1.0 / (s[WEEK + 7 + d] + 1))
            s[WEEK + d] += rate * (v - baseline[b] - s[WEEK + d])
            s[WEEK + 7 + d] += 1
        _learn(s, baseline, seen, b, v, offset, window, clip, season_rate, warmup)
    return out


@njit(cache=True)
def _learn(s, baseline, seen, b, v, offset, window, clip, season_rate, warmup):
    s[SEEN] += 1
    rate = 1.0 / min(s[SEEN], window)
    residual = v - s[LEVEL]
    if s[SEEN] == 1:
        s[LEVEL] = v
    else:
        limit = clip * max(s[SPREAD], 1e-9)
        clipped = _clip(residual, limit) if s[SEEN] > warmup else residual
        s[LEVEL] += rate * clipped
        s[SPREAD] += rate * (abs(clipped) - s[SPREAD])
        s[LEVEL_ERROR] += rate * (abs(residual) - s[LEVEL_ERROR])
    if seen[b] == 0:
        baseline[b] = v - offset
    else:
        residual = v - offset - baseline[b]
        limit = clip * max(s[SEASON_SPREAD], 1e-9)
        clipped = _clip(residual, limit) if seen[b] >= 3 else residual
        if seen[b] >= 2:
            s[SEASON_ERROR] += rate * (abs(residual) - s[SEASON_ERROR])
        baseline[b] += max(season_rate, 1.0 / (seen[b] + 1)) * clipped
        s[SEASON_SPREAD] += rate * (abs(clipped) - s[SEASON_SPREAD])
    seen[b] = min(seen[b] + 1, 255.0)
