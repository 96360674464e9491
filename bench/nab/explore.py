"""Detector design on NAB data: the default detector's knobs, searched, diagnosed and stressed.

``python -m bench.nab.explore [--trials N] [DATA_DIR]`` prints the three profile scores of the
default ``StreamParams``, then samples configurations of the same kernel
(``selfmend.detect.stream_kernel``, whose docstring describes its structure), scores each on the
standard profile and prints the best. ``--diagnose`` prints each file's windows found or missed
and its false positives, ``--sensitivity`` the defaults on each half of the corpus and with each
knob 20 % off, and ``--jitter N`` averages N runs with every knob moved by up to 5 %, and
``--tune-on A|B`` searches on one half (A: the artificial and AdExchange
categories, B: AWS CloudWatch and Traffic) and scores the best on the other. This is where the
defaults are chosen; ``bench.nab.run`` scores what the workers run.
"""

from __future__ import annotations

import argparse
import json
import random
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from bench.nab.run import DEFAULT_DATA
from bench.nab.scoring import PROFILES, Series, best_threshold, load_corpus, point_weights
from selfmend.detect.stream import StreamDetector, StreamParams

HALF_A = ("artificialNoAnomaly", "artificialWithAnomaly", "realAdExchange")


def scores(series: Series, knobs: StreamParams) -> np.ndarray:
    return StreamDetector(knobs).score_many(series.timestamps, series.values)


def trial(corpus: list[Series], knobs: StreamParams) -> float:
    return best_threshold(corpus, [scores(s, knobs) for s in corpus], "standard").normalised


def diagnose(corpus: list[Series], knobs: StreamParams, profile: str = "standard") -> None:
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


def sample(rng: random.Random) -> StreamParams:
    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    margin = rng.uniform(1.1, 2.2)
    return StreamParams(
        window=int(log_uniform(50, 1500)),
        clip=rng.uniform(2, 5),
        bins=rng.choice([24, 48]),
        season_rate=rng.uniform(0.05, 0.5),
        decay=1 - log_uniform(3e-5, 3e-3),
        floor=rng.uniform(2, 8),
        record_growth=margin * rng.uniform(1.05, 2.0),
        phase_decay=1 - log_uniform(1e-3, 3e-2),
        warmup=rng.randint(10, 150),
        refractory=int(log_uniform(10, 200)),
        breakthrough=rng.uniform(2, 6),
        season_gain=rng.uniform(0.3, 1.2),
        margin=margin,
        shift_rate=log_uniform(0.01, 0.1),
        shift_margin=rng.uniform(0.9, 1.2),
        cusum_slack=rng.uniform(0.25, 1.5),
    )


def half(corpus: list[Series], name: str) -> list[Series]:
    """Half A (artificial and AdExchange categories) or half B (AWS CloudWatch and Traffic)."""
    return [s for s in corpus if (s.name.split("/")[0] in HALF_A) == (name == "A")]


def sensitivity(corpus: list[Series]) -> None:
    """The defaults per half, and the standard score with each knob 20 % below and above its
    default (time constants for the decays, as those are what a factor should scale)."""
    defaults = StreamParams()
    for name in "AB":
        print(f"defaults on half {name}: {trial(half(corpus, name), defaults):.1f} (standard)")
    for knob, value in defaults.model_dump().items():
        if isinstance(value, bool) or knob in ("bins", "threshold"):
            continue
        moved = []
        for factor in (0.8, 1.2):
            if knob.endswith("decay"):
                changed = 1 - (1 - value) * factor
            elif isinstance(value, int):
                changed = round(value * factor)
            else:
                changed = value * factor
            moved.append(
                f"{factor:.1f}x: {trial(corpus, defaults.model_copy(update={knob: changed})):.1f}"
            )
        print(f"  {knob:15s} " + "  ".join(moved))


def jittered(knobs: StreamParams, seed: int) -> StreamParams:
    """Every numeric knob moved by up to ±5 % (decays by their time constants)."""
    rng = random.Random(seed)
    moved: dict[str, float] = {}
    for knob, value in knobs.model_dump().items():
        if isinstance(value, bool) or knob in ("bins", "threshold"):
            continue
        factor = rng.uniform(0.95, 1.05)
        if knob.endswith("decay"):
            moved[knob] = 1 - (1 - value) * factor
        elif isinstance(value, int):
            moved[knob] = max(2, round(value * factor))
        else:
            moved[knob] = value * factor
    moved["record_growth"] = max(moved["record_growth"], moved["margin"] * 1.05)
    return knobs.model_copy(update=moved)


def _jitter_trial(args: tuple[Path, int]) -> list[float]:
    data, seed = args
    corpus = _corpus(data)
    all_scores = [scores(s, jittered(StreamParams(), seed)) for s in corpus]
    return [best_threshold(corpus, all_scores, profile).normalised for profile in PROFILES]


def _run_trial(args: tuple[Path, str | None, int]) -> tuple[float, StreamParams]:
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
    parser.add_argument("--jitter", type=int, default=0, help="runs with knobs moved +-5%%")
    args = parser.parse_args()
    corpus = _corpus(args.data)
    if args.diagnose:
        diagnose(corpus, StreamParams())
    if args.sensitivity:
        sensitivity(corpus)
    if args.jitter:
        with Pool() as pool:
            runs = np.array(pool.map(_jitter_trial, [(args.data, k) for k in range(args.jitter)]))
        print(f"jittered, mean of {args.jitter}: " + ", ".join(
            f"{mean:.1f} ({profile})" for mean, profile in zip(runs.mean(0), PROFILES, strict=True)
        ) + f"; standard deviation {runs[:, 0].std():.1f}")  # fmt: skip
    defaults = [scores(s, StreamParams()) for s in corpus]
    results = [best_threshold(corpus, defaults, profile) for profile in PROFILES]
    print("defaults: " + ", ".join(f"{r.normalised:.1f} ({r.profile})" for r in results))
    best: tuple[float, StreamParams] | None = None
    seeds = [(args.data, args.tune_on, args.seed + k) for k in range(args.trials)]
    with Pool() as pool:
        for score, knobs in pool.imap_unordered(_run_trial, seeds):
            if best is None or score > best[0]:
                best = (score, knobs)
                print(f"{score:.1f} {json.dumps(knobs.model_dump())}", flush=True)
    if best is not None and args.tune_on is not None:
        other = "B" if args.tune_on == "A" else "A"
        held_out = trial(half(corpus, other), best[1])
        print(f"best on half {args.tune_on}: {best[0]:.1f}; on half {other}: {held_out:.1f}")


if __name__ == "__main__":
    main()
