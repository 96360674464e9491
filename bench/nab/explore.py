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
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from numba import njit

from bench.nab.run import DEFAULT_DATA
from bench.nab.scoring import Series, best_threshold, load_corpus

DAY = 86400.0


@dataclass(frozen=True)
class Knobs:
    window: int = 675
    clip: float = 2.54
    bins: int = 48
    season_rate: float = 0.28
    record_decay: float = 0.99987
    record_floor: float = 4.69
    warmup: int = 89
    alarm: float = 0.585
    refractory: int = 27
    season_gain: float = 0.54
    shift_rate: float = 0.034
    shift_weight: float = 1.42
    season_and_level: bool = True


@njit(cache=True)
def _kernel(ts, x, window, clip, bins, season_rate, decay, floor, warmup, alarm, refractory,
            season_gain, shift_rate, shift_weight, season_and_level):  # fmt: skip
    n = len(x)
    out = np.zeros(n)
    level = 0.0
    spread = 0.0
    baseline = np.zeros(bins)
    seen_bin = np.zeros(bins)
    season_spread = 0.0
    level_error = 0.0
    season_error = 0.0
    record_level = 0.0
    record_season = 0.0
    record_shift = 0.0
    shift = 0.0
    last_alarm = -1e18
    shift_norm = np.sqrt((2 - shift_rate) / shift_rate)
    for i in range(n):
        v = x[i]
        b = int(((ts[i] % DAY) / DAY) * bins) % bins
        score = 0.0
        if i >= warmup:  # i points seen before this one
            level_scale = max(spread, 1e-3 * max(1.0, abs(level)))
            z_level = abs(v - level) / level_scale
            seasonal = seen_bin[b] >= 2 and season_error < level_error * season_gain
            z_season = 0.0
            signed = (v - level) / level_scale
            if seasonal:
                season_scale = max(season_spread, 1e-3 * max(1.0, abs(baseline[b])))
                signed = (v - baseline[b]) / season_scale
                z_season = abs(signed)
            shift = (1 - shift_rate) * shift + shift_rate * max(min(signed, 10.0), -10.0)
            z_shift = abs(shift) * shift_norm
            ratio_level = z_level / max(record_level, floor)
            ratio_season = z_season / max(record_season, floor)
            ratio_shift = shift_weight * z_shift / max(record_shift, floor)
            if seasonal and season_and_level:
                ratio = max(ratio_level, ratio_season, ratio_shift)
            elif seasonal:
                ratio = max(ratio_season, ratio_shift)
            else:
                ratio = max(ratio_level, ratio_shift)
            score = ratio / (1.0 + ratio)
            if i - last_alarm < refractory:
                score = min(score, alarm * 0.999)
            elif score >= alarm:
                last_alarm = i
            record_level = max(record_level * decay, z_level)
            if seasonal:
                record_season = max(record_season * decay, z_season)
            record_shift = max(record_shift * decay, z_shift)
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


def sample(rng: random.Random) -> Knobs:
    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    return Knobs(
        window=int(log_uniform(50, 800)),
        clip=rng.uniform(2, 5),
        bins=rng.choice([24, 48, 96]),
        season_rate=rng.uniform(0.05, 0.5),
        record_decay=1 - log_uniform(1e-4, 1e-2),
        record_floor=rng.uniform(1.5, 6),
        warmup=rng.randint(10, 100),
        alarm=rng.uniform(0.5, 0.7),
        refractory=rng.randint(20, 400),
        season_gain=rng.uniform(0.5, 1.2),
        shift_rate=log_uniform(0.01, 0.3),
        shift_weight=rng.uniform(0, 1.5),
        season_and_level=rng.random() < 0.5,
    )


def _run_trial(args: tuple[Path, int]) -> tuple[float, Knobs]:
    data, seed = args
    knobs = sample(random.Random(seed))
    return trial(_corpus(data), knobs), knobs


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
    args = parser.parse_args()
    print(f"defaults: {trial(_corpus(args.data), Knobs()):.1f} (standard)")
    best: tuple[float, Knobs] | None = None
    seeds = [(args.data, args.seed + k) for k in range(args.trials)]
    with Pool() as pool:
        for score, knobs in pool.imap_unordered(_run_trial, seeds):
            if best is None or score > best[0]:
                best = (score, knobs)
                print(f"{score:.1f} {json.dumps(asdict(knobs))}", flush=True)


if __name__ == "__main__":
    main()
