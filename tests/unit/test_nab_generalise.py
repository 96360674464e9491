"""The generalisation checks of bench.nab: splits that hold series out, and knob draws."""

import random

import numpy as np
import pytest

from bench.nab.generalise import Bench, category_splits, half_splits, moved, structures
from bench.nab.scoring import Series, at_threshold, best_threshold, gains
from selfmend.detect.params import CalibratedParams


def corpus() -> list[Series]:
    rng = np.random.default_rng(0)
    series = []
    for category in ("alpha", "beta", "gamma"):
        for k in range(3):
            values = rng.normal(0, 1, 400)
            values[300] += 12.0
            series.append(
                Series(f"{category}/s{k}.csv", np.arange(400) * 300.0, values, [(290, 310)])
            )
    return series


def test_each_split_scores_series_it_did_not_choose_on_and_every_series_once():
    series = corpus()
    for splits in (category_splits(series), half_splits(series)):
        scored = sorted(i for split in splits for i in split.score)
        assert scored == list(range(len(series)))
        for split in splits:
            assert not set(split.tune) & set(split.score)
    assert {split.name for split in category_splits(series)} == {"alpha", "beta", "gamma"}


def test_a_threshold_judged_on_its_own_series_gives_the_sweep_total():
    series = corpus()
    scores = [np.abs(s.values) / 20 for s in series]
    swept = best_threshold(series, scores, "standard")
    judged = at_threshold(gains(series, scores, "standard"), "standard", swept.threshold)
    assert judged.raw == pytest.approx(swept.raw)
    assert judged.normalised == pytest.approx(swept.normalised) and swept.normalised > 90


def test_a_threshold_chosen_elsewhere_costs_what_it_costs_on_the_held_out_series():
    series = corpus()
    scores = [np.abs(s.values) / 20 for s in series]
    too_low = at_threshold(gains(series, scores, "standard"), "standard", 0.05)
    assert too_low.false_positives > 100 and too_low.normalised < 0


def test_knob_draws_stay_valid_and_within_their_factor():
    defaults = CalibratedParams()
    rng = random.Random(1)
    for _ in range(20):
        drawn = moved(defaults, rng, 2.0)
        assert drawn.alarm == pytest.approx(defaults.alarm, rel=1.0)
        assert 0.5 <= drawn.tau_level / defaults.tau_level <= 2.0
        assert drawn.counts is defaults.counts


def test_held_out_score_of_a_detector_is_computed_per_profile():
    bench = Bench(corpus(), "spike")
    figures = bench.held_out(category_splits(bench.corpus), [CalibratedParams(warmup=50)])
    assert len(figures) == 3 and all(f > 50 for f in figures)


def test_switches_cover_every_combination_and_fold_picks_are_kept():
    shapes = structures(CalibratedParams())
    assert len(shapes) == 8
    assert {(p.log, p.counts, p.shift) for p in shapes} == {
        (a, b, c) for a in (True, False) for b in (True, False) for c in (True, False)
    }
    bench = Bench(corpus(), "ensemble")
    bench.held_out(category_splits(bench.corpus), shapes[:2])
    assert set(bench.picks) == {"alpha", "beta", "gamma"}
