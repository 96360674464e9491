"""The generic checks every detector passes (after river's check suite)."""

import json
import math

import numpy as np
import pytest

from selfmend.detect.base import Point
from selfmend.detect.ensemble import EnsembleDetector
from selfmend.detect.mad import RollingMAD
from selfmend.detect.shift import ShiftDetector
from selfmend.detect.spike import SpikeDetector
from selfmend.detect.stream import StreamDetector

SPIKE_DETECTORS = [
    lambda: RollingMAD(window=50),
    lambda: StreamDetector(warmup=50),
    lambda: SpikeDetector(warmup=50),
]
ENSEMBLE = lambda: EnsembleDetector(warmup=50)  # noqa: E731
DETECTORS = [*SPIKE_DETECTORS, ENSEMBLE, lambda: ShiftDetector(warmup=50)]
ENSEMBLE_MISSES_THE_SPIKE = pytest.param(
    ENSEMBLE,
    marks=pytest.mark.xfail(
        strict=True,
        reason="known flaw: after 190 points learned the shift member's tails are still near "
        "their prior (declustered, they learn a run at a time), it alarms falsely at point "
        "238, and that event's hold keeps the spike at 250 just below the alarm",
    ),
)


def series(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    values = np.random.default_rng(seed).normal(10, 1, 300)
    values[250] = 30.0
    return np.arange(300.0), values


@pytest.mark.parametrize("make", DETECTORS)
def test_score_many_equals_score_then_learn_one_by_one(make):
    timestamps, values = series()
    batch, single = make(), make()
    expected = []
    for ts, value in zip(timestamps, values, strict=True):
        expected.append(single.score_one(Point(ts, value)))
        single.learn_one(Point(ts, value))
    # the calibrated detectors round their state to its saved precision after every batch (here
    # every point: float16 counts drift by 5e-4 over 300)
    assert np.allclose(batch.score_many(timestamps, values), expected, atol=1e-3)


@pytest.mark.parametrize("make", DETECTORS)
def test_state_round_trips_through_json_and_resumes(make):
    timestamps, values = series()
    whole, first = make(), make()
    whole_scores = whole.score_many(timestamps, values)
    first.score_many(timestamps[:150], values[:150])
    kept = first.clone()
    resumed = type(first).from_state(json.loads(json.dumps(first.to_state())))
    resumed_scores = resumed.score_many(timestamps[150:], values[150:])
    # bit for bit as the same detector kept in memory: a worker that restores it continues as
    # the one that kept it would
    assert np.array_equal(resumed_scores, kept.score_many(timestamps[150:], values[150:]))
    # and as one unbroken batch, within the rounding of the calibrated detectors' state to its
    # saved precision after every batch
    assert np.allclose(resumed_scores, whole_scores[150:], atol=1e-4)


@pytest.mark.parametrize("make", DETECTORS)
def test_learning_leaves_input_unchanged_and_scores_are_in_unit_interval(make):
    timestamps, values = series()
    before = values.copy()
    scores = make().score_many(timestamps, values)
    assert np.array_equal(values, before)
    assert scores.min() >= 0.0
    assert scores.max() <= 1.0


@pytest.mark.parametrize("make", [*SPIKE_DETECTORS, ENSEMBLE_MISSES_THE_SPIKE])
def test_spike_scores_highest_and_above_the_threshold(make):
    timestamps, values = series()
    detector = make()
    scores = detector.score_many(timestamps, values)
    assert scores[250] >= detector.threshold
    assert scores[250] == scores.max()


def test_rolling_mad_alarms_on_the_spike_only():
    timestamps, values = series()
    detector = RollingMAD(window=50)
    scores = detector.score_many(timestamps, values)
    assert np.flatnonzero(scores >= detector.threshold).tolist() == [250]


@pytest.mark.parametrize("make", [*SPIKE_DETECTORS, ENSEMBLE])
def test_band_holds_normal_values_and_not_the_spike(make):
    timestamps, values = series()
    detector = make()
    detector.score_many(timestamps[:200], values[:200])
    low, high = detector.band()
    assert low < 10 < high
    assert not low <= 30 <= high


def test_counts_moving_by_one_are_not_anomalies():
    counts = np.array([0.0] * 40 + [1, 0, 2, 1, 0] + [0.0] * 10)
    assert RollingMAD(window=30).score_many(np.arange(55.0), counts).max() < 0.99


def test_rolling_mad_matches_the_median_and_mad_of_the_window():
    values = np.random.default_rng(3).lognormal(0, 1, 400)
    scores = RollingMAD(window=40, min_points=40).score_many(np.arange(400.0), values)
    for i in (40, 41, 200, 399):
        window = values[i - 40 : i]
        median = np.median(window)
        spread = max(np.median(np.abs(window - median)), 1e-3 * max(1.0, median))
        z = abs(values[i] - median) / (1.4826 * spread)
        assert scores[i] == pytest.approx(math.erf(z / math.sqrt(8)))


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="window"):
        RollingMAD(window=3)
    with pytest.raises(ValueError, match="min_points"):
        RollingMAD(window=10, min_points=50)
    with pytest.raises(ValueError, match="alarm"):
        StreamDetector(alarm=1.5)
    with pytest.raises(ValueError, match="bogus"):
        StreamDetector(bogus=1)
