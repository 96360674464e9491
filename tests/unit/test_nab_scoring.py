"""NAB scoring on small made-up series whose totals can be worked out by hand."""

import math

import numpy as np
import pytest

from bench.nab.scoring import Series, best_threshold, point_weights, scaled_sigmoid


def series(n: int, windows: list[tuple[int, int]]) -> Series:
    return Series("made-up", np.arange(n) * 300.0, np.zeros(n), windows)


def test_scaled_sigmoid_matches_nab():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.0) < 0 and scaled_sigmoid(3.01) == -1.0


def test_probation_is_fifteen_percent_at_most_750_points():
    assert series(100, []).probation == 15
    assert series(10_000, []).probation == 750


def test_weights_inside_a_window_fall_from_its_left_edge_and_fade_after_it():
    weights = point_weights(series(100, [(40, 49)]))
    assert list(weights.window[:15]) == [-2] * 15  # probation
    assert weights.sigmoid[20] == -1.0  # no window before it
    assert weights.sigmoid[40] == pytest.approx(scaled_sigmoid(-1.0))
    assert weights.sigmoid[49] == pytest.approx(scaled_sigmoid(-0.1))
    assert weights.sigmoid[50] == pytest.approx(scaled_sigmoid(1 / 9))
    assert weights.sigmoid[40] > weights.sigmoid[45] > weights.sigmoid[49] > 0


def test_perfect_detector_scores_100_and_null_detector_0():
    corpus = [series(100, [(40, 49)]), series(200, [(60, 69), (150, 159)])]
    perfect = [np.zeros(100), np.zeros(200)]
    perfect[0][40] = perfect[1][60] = perfect[1][150] = 1.0
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert best_threshold(corpus, perfect, profile).normalised == pytest.approx(100.0)
        nothing = best_threshold(corpus, [np.zeros(100), np.zeros(200)], profile)
        assert nothing.normalised == pytest.approx(0.0)


def test_a_window_counts_once_by_its_earliest_detection_and_each_false_positive_costs():
    corpus = [series(100, [(40, 49)])]
    scores = np.zeros(100)
    scores[[45, 46, 47]] = 1.0  # three detections in the window: only 45 counts
    scores[20] = 1.0  # before any window: -fp
    result = best_threshold(corpus, [scores], "standard")
    tp = scaled_sigmoid(-(49 - 45 + 1) / 10) / scaled_sigmoid(-1.0)
    assert result.raw == pytest.approx(tp - 0.11)
    assert result.normalised == pytest.approx(100 * (tp - 0.11 + 1) / 2)
    assert (result.true_positives, result.false_positives) == (1, 1)


def test_threshold_is_chosen_to_leave_out_costly_low_scores():
    corpus = [series(100, [(40, 49)])]
    scores = np.zeros(100)
    scores[41] = 0.9
    scores[20:30] = 0.5  # ten false positives below the true detection
    result = best_threshold(corpus, [scores], "reward_low_FP_rate")
    assert result.threshold == 0.9
    assert result.false_positives == 0
    assert math.isclose(result.raw, scaled_sigmoid(-0.9) / scaled_sigmoid(-1.0))
