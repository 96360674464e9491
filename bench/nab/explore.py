"""Detector design on NAB data: a candidate streaming kernel and a random search over its knobs.

``python -m bench.nab.explore [--trials N] [DATA_DIR]`` samples configurations, scores each on
the standard profile and prints the best. This is the bench where the production detector's
structure and defaults are chosen on data; ``bench.nab.run`` scores what the workers run.

The kernel reads each point once, in order, with constant state (what the workers can keep per
series in under 2 KB), and scores a point before learning it:

- level: a Huber-clipped exponentially weighted mean and mean absolute deviation;
- seasonal: a per-phase-of-day baseline in ``bins`` bins, used when it predicts better than the
  level (its weighted absolute error below ``season_gain`` times the level's);
- shift: an EWMA of the signed standardised residual (a change-point statistic);
- calibration: each stream's |z| against a slowly decaying record of its own past values, so a
  score near 0.5 means "as surprising as the most surprising point lately", whatever the scale;
- refractory: after a score reaches ``alarm``, scores stay below it for ``refractory`` points,
  because one event should raise one alarm (NAB counts a window once and every extra alarm
  outside it as a false positive).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from numba import njit

from bench.nab.run import DEFAULT_DATA
from bench.nab.scoring import PROFILES, Series, best_threshold, load_corpus, point_weights

DAY = 86400.0
HALF_A = ("artificialNoAnomaly", "artificialWithAnomaly", "realAdExchange")


@dataclass(frozen=True)
class Knobs:
    window: int = 675
    clip: float = 2.54
    bins: int = 48
    season_rate: float = 0.28
    record_decay: float = 0.99987
    record_floor: float = 4.69
    record_growth: float = 1.8
    phase_decay: float = 0.995
    warmup: int = 89
    refractory: int = 27
    season_gain: float = 0.54
    margin: float = 1.5
    shift_rate: float = 0.027
    shift_margin: float = 0.993
    cusum_slack: float = 0.5
    season_and_level: bool = True


LEVEL, SEASON, SHIFT, CUSUM = range(4)  # the statistics, as indices into z and the records


@njit(cache=True)
def _kernel(ts, x, window, clip, bins, season_rate, decay, floor, growth, phase_decay, warmup,
            refractory, season_gain, margin, shift_rate, shift_margin, cusum_slack,
            season_and_level):  # fmt: skip
    n = len(x)
    out = np.zeros(n)
    level = 0.0
    spread = 0.0
    baseline = np.zeros(bins)
    seen_bin = np.zeros(bins)
    phase_record = np.zeros(bins)
    season_spread = 0.0
    level_error = 0.0
    season_error = 0.0
    z = np.zeros(4)
    record = np.zeros(4)
    event_cap = np.zeros(4)  # how far the points of the current event may raise each record
    shift = 0.0
    cusum_up = 0.0
    cusum_down = 0.0
    last_alarm = -1e18
    shift_norm = np.sqrt((2 - shift_rate) / shift_rate)
    for i in range(n):
        v = x[i]
        b = int(((ts[i] % DAY) / DAY) * bins) % bins
        score = 0.0
        if i >= warmup:  # i points seen before this one
            level_scale = max(spread, 1e-3 * max(1.0, abs(level)))
            z[LEVEL] = abs(v - level) / level_scale
            seasonal = seen_bin[b] >= 2 and season_error < level_error * season_gain
            z[SEASON] = 0.0
            signed = (v - level) / level_scale
            if seasonal:
                season_scale = max(season_spread, 1e-3 * max(1.0, abs(baseline[b])))
                signed = (v - baseline[b]) / season_scale
                z[SEASON] = abs(signed)
            signed = max(min(signed, 10.0), -10.0)
            shift = (1 - shift_rate) * shift + shift_rate * signed
            z[SHIFT] = abs(shift) * shift_norm
            cusum_up = max(0.0, cusum_up + signed - cusum_slack)
            cusum_down = max(0.0, cusum_down - signed - cusum_slack)
            z[CUSUM] = max(cusum_up, cusum_down)
            usual_level = max(record[LEVEL], floor, phase_record[(b - 1) % bins], phase_record[b],
                              phase_record[(b + 1) % bins])  # fmt: skip
            ratio_level = z[LEVEL] / (margin * usual_level)
            ratio_season = z[SEASON] / (margin * max(record[SEASON], floor))
            ratio_shift = z[SHIFT] / (shift_margin * max(record[SHIFT], floor))
            ratio_cusum = z[CUSUM] / (margin * max(record[CUSUM], floor))
            ratio = max(ratio_shift, ratio_cusum)
            if seasonal and season_and_level:
                ratio = max(ratio, ratio_level, ratio_season)
            elif seasonal:
                ratio = max(ratio, ratio_season)
            else:
                ratio = max(ratio, ratio_level)
            if i - last_alarm < refractory:
                ratio = min(ratio, 0.997)
            elif ratio >= 1.0:
                last_alarm = i
                event_cap[:] = np.maximum(record, floor) * growth
            in_event = i - last_alarm < refractory
            for k in range(4):
                if k != SEASON or seasonal:
                    learned = min(z[k], event_cap[k]) if in_event else z[k]
                    record[k] = max(record[k] * decay, learned)
            phase_record[b] = max(phase_record[b] * phase_decay, z[LEVEL])
            score = ratio / (1.0 + ratio)
        out[i] = score
        seen_points = i + 1
        rate = 1.0 / min(seen_points, window)
        residual = v - level
        if seen_points == 1:
            level = v
        else:
            limit = clip * max(spread, 1e-9)
            clipped = min(max(residual, -limit), limit) if seen_points > warmup else residual
            level += rate * clipped
            spread += rate * (abs(clipped) - spread)
            level_error += rate * (abs(residual) - level_error)
        if seen_bin[b] == 0:
            baseline[b] = v
        else:
            residual = v - baseline[b]
            limit = clip * max(season_spread, 1e-9)
            clipped = min(max(residual, -limit), limit) if seen_bin[b] >= 3 else residual
            if seen_bin[b] >= 2:
                season_error += rate * (abs(residual) - season_error)
            baseline[b] += max(season_rate, 1.0 / (seen_bin[b] + 1)) * clipped
            season_spread += rate * (abs(clipped) - season_spread)
        seen_bin[b] += 1
    return out


def scores(series: Series, knobs: Knobs) -> np.ndarray:
    return _kernel(series.timestamps, series.values.astype(float), *asdict(knobs).values())


def trial(corpus: list[Series], knobs: Knobs) -> float:
    return best_threshold(corpus, [scores(s, knobs) for s in corpus], "standard").normalised


def diagnose(corpus: list[Series], knobs: Knobs, profile: str = "standard") -> None:
    """Per file, at the profile's best threshold: each window's earliest detection (its relative
    position, -1 = left edge) or its peak score when missed, and the false positives' cost."""
    all_scores = [scores(s, knobs) for s in corpus]
    result = best_threshold(corpus, all_scores, profile)
    threshold, fp_weight = result.threshold, PROFILES[profile][1]
    print(f"{profile}: {result.normalised:.1f} at threshold {threshold:.4f}")
    for series, score in zip(corpus, all_scores, strict=True):
        weights = point_weights(series)
        hits = score >= threshold
        outcomes = []
        for left, right in series.windows:
            first = np.flatnonzero(hits[left : right + 1])
            if left < series.probation:
                outcomes.append("probation")
            elif len(first):
                outcomes.append(f"found {-(right - left - first[0] + 1) / (right - left + 1):+.2f}")
            else:
                outcomes.append(f"MISSED peak {score[left : right + 1].max():.3f}")
        false = np.flatnonzero(hits & (weights.window == -1))
        cost = -fp_weight * weights.sigmoid[false].sum()
        print(f"  {series.name:55s} fp {len(false):2d} ({cost:.2f})  " + "; ".join(outcomes))


def sample(rng: random.Random) -> Knobs:
    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    return Knobs(
        window=int(log_uniform(50, 1500)),
        clip=rng.uniform(2, 5),
        bins=rng.choice([24, 48, 96]),
        season_rate=rng.uniform(0.05, 0.5),
        record_decay=1 - log_uniform(3e-5, 3e-3),
        record_floor=rng.uniform(2, 8),
        record_growth=rng.uniform(1.2, 3),
        phase_decay=1 - log_uniform(1e-3, 3e-2),
        warmup=rng.randint(10, 150),
        refractory=int(log_uniform(10, 200)),
        season_gain=rng.uniform(0.3, 1.2),
        margin=rng.uniform(1.1, 2.2),
        shift_rate=log_uniform(0.01, 0.1),
        shift_margin=rng.uniform(0.9, 1.2),
        cusum_slack=log_uniform(0.1, 2),
        season_and_level=rng.random() < 0.5,
    )


def half(corpus: list[Series], name: str) -> list[Series]:
    """Half A (artificial and AdExchange categories) or half B (AWS CloudWatch and Traffic)."""
    in_a = [s.name.split("/")[0] in HALF_A for s in corpus]
    return [s for s, a in zip(corpus, in_a, strict=True) if a == (name == "A")]


def sensitivity(corpus: list[Series]) -> None:
    """The defaults per half, and the standard score with each knob 20 % below and above its
    default (time constants for the decays, as those are what a factor should scale)."""
    defaults = Knobs()
    for name in "AB":
        print(f"defaults on half {name}: {trial(half(corpus, name), defaults):.1f} (standard)")
    for knob, value in asdict(defaults).items():
        if isinstance(value, bool) or knob == "bins":
            continue
        moved = []
        for factor in (0.8, 1.2):
            if knob.endswith("decay"):
                changed = 1 - (1 - value) * factor
            else:
                changed = type(value)(
                    round(value * factor) if isinstance(value, int) else value * factor
                )
            moved.append(
                f"{factor:.1f}x: {trial(corpus, replace(defaults, **{knob: changed})):.1f}"
            )
        print(f"  {knob:15s} " + "  ".join(moved))


def _run_trial(args: tuple[Path, str | None, int]) -> tuple[float, Knobs]:
    data, tune_on, seed = args
    corpus = _corpus(data) if tune_on is None else half(_corpus(data), tune_on)
    knobs = sample(random.Random(seed))
    return trial(corpus, knobs), knobs


_CORPORA: dict[Path, list[Series]] = {}


def _corpus(data: Path) -> list[Series]:
    if data not in _CORPORA:
        _CORPORA[data] = load_corpus(data)
    return _CORPORA[data]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--diagnose", action="store_true", help="per-file outcomes of the defaults")
    parser.add_argument("--sensitivity", action="store_true", help="halves and +-20%% per knob")
    parser.add_argument("--tune-on", choices="AB", help="search on one half, report the other")
    args = parser.parse_args()
    corpus = _corpus(args.data)
    if args.diagnose:
        diagnose(corpus, Knobs())
    if args.sensitivity:
        sensitivity(corpus)
    defaults = [scores(s, Knobs()) for s in corpus]
    results = [best_threshold(corpus, defaults, profile) for profile in PROFILES]
    print("defaults: " + ", ".join(f"{r.normalised:.1f} ({r.profile})" for r in results))
    best: tuple[float, Knobs] | None = None
    seeds = [(args.data, args.tune_on, args.seed + k) for k in range(args.trials)]
    with Pool() as pool:
        for score, knobs in pool.imap_unordered(_run_trial, seeds):
            if best is None or score > best[0]:
                best = (score, knobs)
                print(f"{score:.1f} {json.dumps(asdict(knobs))}", flush=True)
    if best is not None and args.tune_on is not None:
        other = "B" if args.tune_on == "A" else "A"
        held_out = trial(half(corpus, other), best[1])
        print(f"best on half {args.tune_on}: {best[0]:.1f}; on half {other}: {held_out:.1f}")


if __name__ == "__main__":
    main()
