"""The calibrated detectors: a score that is the same tail probability on every series."""

import json

import numpy as np
import pytest

from bench.detectors import NOISES
from selfmend.detect import tail
from selfmend.detect.choice import DetectorChoice
from selfmend.detect.ensemble import EnsembleDetector
from selfmend.detect.shift import ShiftDetector
from selfmend.detect.spike import SpikeDetector

MINUTE = 60.0


def alarm_rate(noise: str, sensitivity: float, series: int = 6, points: int = 8000) -> float:
    rng = np.random.default_rng(7)
    timestamps = np.arange(points) * MINUTE
    alarms = 0
    for _ in range(series):
        detector = EnsembleDetector()
        scores = detector.score_many(timestamps, NOISES[noise](rng, points))
        alarms += int((scores[200:] >= detector.threshold_at(sensitivity)).sum())
    return alarms / (series * (points - 200))


@pytest.mark.parametrize("noise", sorted(NOISES))
def test_alarm_rate_stays_near_the_asked_tail_probability_on_any_noise(noise):
    """Light or heavy tails, counts or not: at most three times the asked rate, and within a
    factor of ten below it at sensitivity 10 (an uncalibrated threshold is off
    1,000-fold from Gaussian to log-normal noise, see bench.detectors). Below is the
    conservative side: a conformal share cannot fall under one in the points seen, and the
    fusion's Bonferroni correction counts correlated members as independent."""
    rates = {s: alarm_rate(noise, s) for s in (0.1, 1.0, 10.0)}
    assert rates[1.0] <= 3e-4 and 1e-3 / 10 <= rates[10.0] <= 3e-3
    assert rates[10.0] > rates[0.1]  # 1e-5 is not resolved by 48,000 points: only the order


def test_sensitivity_moves_the_threshold_by_its_tail_probability():
    detector = EnsembleDetector()
    assert detector.threshold_at(1.0) == detector.threshold == 0.5
    assert detector.threshold_at(10.0) < detector.threshold < detector.threshold_at(0.1)
    assert (
        alarm_rate("student_t3", 0.1) < alarm_rate("student_t3", 1) < alarm_rate("student_t3", 10)
    )


def test_a_heavier_tail_needs_a_larger_value_for_the_same_surprise():
    light, heavy = tail.new_tails(1), tail.new_tails(1)
    rng = np.random.default_rng(1)
    for a, b in zip(np.abs(rng.normal(0, 1.25, 20000)), np.abs(rng.standard_t(2, 20000)),
                    strict=True):  # fmt: skip
        tail.learn(light, 0, a, 1e-3, tail.MAX_SURPRISE, False)
        tail.learn(heavy, 0, b, 1e-3, tail.MAX_SURPRISE, False)
    assert tail.surprise(light, 0, 8.0) > tail.surprise(heavy, 0, 8.0)
    for state in (light, heavy):
        for level in (1.0, 3.0, 6.0):
            assert tail.surprise(state, 0, tail.value_at(state, 0, level)) == pytest.approx(level)


@pytest.mark.parametrize("seed", [4, 6])
def test_a_small_lasting_shift_is_found_by_the_shift_member_not_the_spike_member(seed):
    """A 2-sigma shift: no single point is unusual, the run is. The shift member counts an
    averaging statistic's run about once, in its tail and in the values it has seen, so the
    building run does not teach it its own size (it did, and was never found)."""
    rng = np.random.default_rng(seed)
    timestamps = np.arange(3000) * MINUTE
    values = rng.normal(0, 1, 3000)
    values[2000:] += 2.0
    spike, shift = SpikeDetector(), ShiftDetector()
    assert spike.score_many(timestamps, values)[2000:2100].max() < spike.threshold
    scores = shift.score_many(timestamps, values)
    assert (scores[200:2000] >= shift.threshold).sum() <= 2
    after = np.flatnonzero(scores[2000:] >= shift.threshold)
    assert after.size and after[0] < 20
    fused = EnsembleDetector().score_many(timestamps, values)
    assert np.flatnonzero(fused[2000:2030] >= 0.5).size


def test_a_level_that_moves_for_good_alarms_once_then_is_relearned():
    rng = np.random.default_rng(5)
    timestamps = np.arange(4000) * MINUTE
    values = rng.normal(50, 2, 4000)
    values[2000:] += 30
    scores = EnsembleDetector().score_many(timestamps, values)
    alarms = np.flatnonzero(scores >= 0.5)
    assert alarms[alarms >= 2000][0] == 2000
    assert (alarms > 2100).sum() <= 1  # the new level is normal within the hold


def test_counts_member_sees_a_burst_and_stops_once_a_value_is_negative():
    rng = np.random.default_rng(6)
    timestamps = np.arange(3000) * MINUTE
    counts = rng.poisson(2, 3000).astype(float)
    counts[2500] = 40.0
    burst = SpikeDetector(log=True).score_many(timestamps, counts)
    assert burst[2500] >= 0.5 and burst[2500] == burst.max()
    member = SpikeDetector(log=True)
    member.score_many(timestamps[:100], counts[:100])
    after = member.score_many(timestamps[100:], np.where(np.arange(2900) == 0, -1.0, counts[100:]))
    assert after.max() == 0.0


def test_ensemble_state_stays_under_2_kb_and_resumes_through_the_choice():
    rng = np.random.default_rng(8)
    timestamps = np.arange(0, 14 * 86400, 300.0)  # two weeks of five-minute samples
    values = 10 + 5 * np.sin(2 * np.pi * timestamps / 86400) + rng.normal(0, 1, timestamps.size)
    detector = EnsembleDetector()
    detector.score_many(timestamps[:-100], values[:-100])
    text = json.dumps(detector.to_state())
    assert len(text) < 2048
    restored = DetectorChoice(series="*", detector="ensemble").restore(json.loads(text))
    twin = detector.clone()
    assert np.allclose(
        restored.score_many(timestamps[-100:], values[-100:]),
        twin.score_many(timestamps[-100:], values[-100:]),
        atol=1e-4,  # float32 state
    )
    low, high = detector.band()
    assert low < values[-100] < high


def test_a_clone_scores_ahead_without_touching_the_original():
    timestamps = np.arange(500) * MINUTE
    values = np.random.default_rng(9).normal(0, 1, 500)
    detector = EnsembleDetector()
    detector.score_many(timestamps[:400], values[:400])
    before = json.dumps(detector.to_state())
    detector.clone().score_many(timestamps[400:], values[400:] + 100)
    assert json.dumps(detector.to_state()) == before


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="tau_level"):
        EnsembleDetector(tau_level=0)
    with pytest.raises(ValueError, match=r"params\.hold"):
        DetectorChoice(series="*", detector="ensemble", params={"hold": -1})
