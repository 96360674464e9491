"""Does a detector hold on series it was not shaped on? ``python -m bench.nab.generalise``.

Prints, for a detector (``--detector``, default: the workers' default), the plain NAB score
(knobs and threshold chosen on all 33 series, NAB's own rule) beside three checks:

- **leave one category out**: for each of the five categories, the knobs and each profile's
  threshold are chosen on the other four and the fifth is scored; the five held-out totals are
  added and normalised together. "Defaults" keeps the detector's defaults and only chooses the
  threshold out of fold; "searched" also picks the knobs in fold, from the defaults and
  ``--candidates`` configurations sampled around them (each numeric knob times a log-uniform
  factor in [1/2, 2]; not the threshold, the score's scale, nor the number of phases of the
  day, a structural choice), which is how a knob search shapes a detector; "switches" picks in
  fold among the defaults with each combination of their on/off knobs (an ensemble's members,
  a seasonal term) and prints what each fold chose;
- **half split**: the same, with the series of each category dealt alternately into two
  halves; each half is scored with what was chosen on the other;
- **jitter**: the plain score with every numeric knob moved by a log-uniform factor in
  [0.8, 1.25], the mean and the worst of ``--jitter`` draws: a default on a sharp peak falls.

``--broad N`` (stream only) adds leave one category out with the knobs chosen in fold among N
configurations drawn from the wide ranges ``bench.nab.explore`` searched: the procedure that made
stream's defaults, run without the held-out category, where its defaults saw every category.

A detector that generalises loses little from the plain figure to the others.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from bench.nab.explore import sample
from bench.nab.run import DEFAULT_DATA
from bench.nab.scoring import (
    PROFILES,
    Series,
    at_threshold,
    best_threshold,
    gains,
    load_corpus,
    normalised,
)
from selfmend.detect.choice import DEFAULT, PARAMS, detector_class

SEARCH_FACTOR = 2.0
JITTER_FACTOR = 1.25
FIXED = ("threshold", "bins")  # the score's scale, and the day's division into phases


@dataclass(frozen=True)
class Split:
    """Series to choose on and series to score, by their index in the corpus."""

    name: str
    tune: list[int]
    score: list[int]


def category(series: Series) -> str:
    return series.name.split("/")[0]


def category_splits(corpus: list[Series]) -> list[Split]:
    names = sorted({category(s) for s in corpus})
    return [
        Split(
            name,
            [i for i, s in enumerate(corpus) if category(s) != name],
            [i for i, s in enumerate(corpus) if category(s) == name],
        )
        for name in names
    ]


def half_splits(corpus: list[Series]) -> list[Split]:
    """Within each category, series alternate between halves A and B (by name)."""
    rank: dict[str, int] = {}
    half = []
    for s in corpus:  # the corpus is sorted by name
        half.append(rank.get(category(s), 0) % 2)
        rank[category(s)] = rank.get(category(s), 0) + 1
    a = [i for i, h in enumerate(half) if h == 0]
    b = [i for i, h in enumerate(half) if h == 1]
    return [Split("A", b, a), Split("B", a, b)]


def moved(params: BaseModel, rng: random.Random, factor: float) -> BaseModel:
    """Every numeric knob but those ``FIXED`` times a log-uniform factor in [1/f, f]; a decay
    moves by its time constant 1 / (1 - decay). Redrawn until the knobs validate."""
    for _ in range(100):
        knobs: dict[str, object] = {}
        for name, value in params.model_dump().items():
            if isinstance(value, bool) or not isinstance(value, int | float) or name in FIXED:
                continue
            f = math.exp(rng.uniform(-math.log(factor), math.log(factor)))
            if name.endswith("decay") and 0 < value < 1:
                knobs[name] = 1 - (1 - value) / f
            elif isinstance(value, int):
                knobs[name] = max(1, round(value * f))
            else:
                knobs[name] = value * f
        try:
            return params.model_validate({**params.model_dump(), **knobs})
        except ValidationError:
            continue
    raise RuntimeError(f"no valid draw around {params!r}")


class Bench:
    """Scores of each configuration, computed once and reused by every split."""

    def __init__(self, corpus: list[Series], detector: str) -> None:
        self.corpus = corpus
        self.detector = detector
        self.build: Callable[[BaseModel], object] = detector_class(detector)
        self._scores: dict[str, list[np.ndarray]] = {}

    def scores(self, params: BaseModel) -> list[np.ndarray]:
        key = params.model_dump_json()
        if key not in self._scores:
            self._scores[key] = [
                self.build(params).score_many(s.timestamps, s.values) for s in self.corpus
            ]
        return self._scores[key]

    def plain(self, params: BaseModel, subset: Sequence[int] | None = None) -> list[float]:
        chosen = range(len(self.corpus)) if subset is None else subset
        corpus = [self.corpus[i] for i in chosen]
        scores = [self.scores(params)[i] for i in chosen]
        return [best_threshold(corpus, scores, profile).normalised for profile in PROFILES]

    def held_out(self, splits: list[Split], candidates: list[BaseModel]) -> list[float]:
        """Per profile: each split's score set judged at what was chosen on its tune set, the
        held-out totals added and normalised together. ``picks`` keeps, per split, the candidate
        the standard profile chose."""
        results = []
        self.picks: dict[str, BaseModel] = {}
        for profile in PROFILES:
            total = windows = 0.0
            for split in splits:
                tune = [self.corpus[i] for i in split.tune]
                score = [self.corpus[i] for i in split.score]
                fits = [
                    best_threshold(tune, [self.scores(c)[i] for i in split.tune], profile)
                    for c in candidates
                ]
                best = max(range(len(candidates)), key=lambda k: fits[k].raw)
                if profile == "standard":
                    self.picks[split.name] = candidates[best]
                table = gains(score, [self.scores(candidates[best])[i] for i in split.score],
                              profile)  # fmt: skip
                total += at_threshold(table, profile, fits[best].threshold).raw
                windows += table.n_windows
            results.append(normalised(total, windows, profile))
        return results


def structures(params: BaseModel) -> list[BaseModel]:
    """The defaults with every combination of their switches (members, seasonal terms)."""
    switches = [name for name, value in params.model_dump().items() if isinstance(value, bool)]
    return [
        params.model_copy(update=dict(zip(switches, values, strict=True)))
        for values in itertools.product((True, False), repeat=len(switches))
    ]


def line(label: str, figures: Sequence[float]) -> str:
    return f"{label:44s}" + "".join(f"{f:10.1f}" for f in figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--detector", default=DEFAULT.detector, choices=sorted(PARAMS))
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--jitter", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--broad",
        type=int,
        default=0,
        help="stream only: configurations drawn from the wide "
        "ranges bench.nab.explore searched, chosen in fold (how its defaults were made)",
    )
    args = parser.parse_args()
    bench = Bench(load_corpus(args.data), args.detector)
    defaults = PARAMS[args.detector]()
    rng = random.Random(args.seed)
    searched = [defaults] + [moved(defaults, rng, SEARCH_FACTOR) for _ in range(args.candidates)]
    print(f"detector {args.detector}, {len(bench.corpus)} series from {args.data}")
    print(f"{'':44s}" + "".join(f"{p[:10]:>10s}" for p in ("standard", "low FP", "low FN")))
    print(line("plain (all 33 series)", bench.plain(defaults)))
    by_category = category_splits(bench.corpus)
    halves = half_splits(bench.corpus)
    print(line("leave one category out, defaults", bench.held_out(by_category, [defaults])))
    print(line(f"leave one category out, searched ({len(searched)})",
               bench.held_out(by_category, searched)))  # fmt: skip
    shapes = structures(defaults)
    print(line(f"leave one category out, switches ({len(shapes)})",
               bench.held_out(by_category, shapes)))  # fmt: skip
    for held, pick in bench.picks.items():
        switched = {k: v for k, v in pick.model_dump().items() if isinstance(v, bool)}
        print(f"  without {held}: {switched}")
    if args.broad and args.detector == "stream":
        wide = [sample(random.Random(args.seed + k)) for k in range(args.broad)]
        print(line(f"leave one category out, wide search ({args.broad})",
                   bench.held_out(by_category, wide)))  # fmt: skip
    print(line("half split, defaults", bench.held_out(halves, [defaults])))
    print(line(f"half split, searched ({len(searched)})", bench.held_out(halves, searched)))
    draws = np.array([bench.plain(moved(defaults, rng, JITTER_FACTOR)) for _ in range(args.jitter)])
    if len(draws):
        print(line(f"jitter x{JITTER_FACTOR}, mean of {args.jitter}", draws.mean(axis=0)))
        print(line(f"jitter x{JITTER_FACTOR}, worst of {args.jitter}", draws.min(axis=0)))


if __name__ == "__main__":
    main()
