"""Per-series sensitivity in the detectors and the analyze pass: every registered detector maps it
to a threshold (the default exactly, higher alarming more), the mapped alarms move about as the
sensitivity on noise, and a pass applies each series' own setting to it alone, from the next
pass, with its learned state untouched."""

import numpy as np
import pytest
from sqlalchemy import select

from bench.sensitivity import noise, relative_alarms
from selfmend.config import Settings
from selfmend.detect.base import Detector, Point
from selfmend.detect.choice import CLASSES, choice_for, detector_class
from selfmend.detect.mad import RollingMAD
from selfmend.detect.stream import StreamDetector
from selfmend.models import Sample, series_key
from selfmend.store.tables import anomalies, series
from selfmend.system import System

START = 1_700_000_000.0
HISTORY = 300
MEAN, SIGMA = 50.0, 2.0
NAME = "app.latency_ms"
QUIET, LOUD, SIBLING = ({"host": host} for host in ("quiet", "loud", "sibling"))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_detector_keeps_its_threshold_at_the_default_and_lowers_it_for_more_alarms(name):
    detector = detector_class(name)()
    thresholds = [detector.threshold_at(s) for s in (0.1, 0.5, 1.0, 2.0, 10.0)]

    assert detector.threshold_at(1.0) == detector.threshold
    assert all(0 < t < 1 for t in thresholds)
    assert thresholds == sorted(thresholds, reverse=True)
    assert len(set(thresholds)) == len(thresholds)


@pytest.mark.parametrize("make", [StreamDetector, RollingMAD])
def test_alarms_on_heavy_tailed_noise_move_about_as_the_sensitivity(make):
    figures = relative_alarms(make, noise("student_t5", series=20, points=5000))
    at_tenth, at_half, at_twice, at_ten = figures["events"]

    assert 0.2 <= at_half <= 0.8
    assert 1.4 <= at_twice <= 3.0
    assert at_tenth < at_half and at_twice < at_ten


@pytest.fixture
def system(tmp_path):
    return System.from_settings(Settings(home=tmp_path), patterns=())


def add(system: System, ts: np.ndarray, values: np.ndarray, *labels: dict[str, str]) -> None:
    system.store.samples.insert(
        [
            Sample(series=NAME, ts=float(t), value=float(v), labels=label)
            for label in labels
            for t, v in zip(ts, values, strict=True)
        ]
    )


def learned(system: System, labels: dict[str, str]) -> Detector:
    """The series' detector as the last pass saved it."""
    [cursor] = [c for c in system.store.samples.cursors() if c.key == series_key(NAME, labels)]
    state = system.store.samples.detector_states([cursor.id])[cursor.id]
    return choice_for(NAME).restore(state["model"])


def value_scoring(detector: Detector, ts: float, target: float) -> float:
    """A value above the noise's mean that the detector scores at ``target`` (bisection: the
    score rises with the distance from the mean)."""
    below, above = MEAN, MEAN + 100 * SIGMA
    for _ in range(60):
        middle = (below + above) / 2
        if detector.score_one(Point(ts, middle)) < target:
            below = middle
        else:
            above = middle
    return above


def spike_anomalies(system: System, ts: float) -> set[str]:
    """The keys of the series with an anomaly stored at ``ts``."""
    query = (
        select(series.c.key)
        .join(anomalies, anomalies.c.series_id == series.c.id)
        .where(anomalies.c.ts == ts)
    )
    with system.store.engine.connect() as connection:
        return set(connection.scalars(query))


def calm(system: System, ts: float, points: int, *labels: dict[str, str]) -> float:
    """The same noise on each series from ``ts``, analyzed; returns the next point's time."""
    values = np.random.default_rng(int(ts)).normal(MEAN, SIGMA, points)
    add(system, ts + np.arange(points), values, *labels)
    system.analyzer.run(now=ts + points)
    return ts + points


def spike_on(system: System, ts: float, target: float, *labels: dict[str, str]) -> set[str]:
    """A spike the default detector scores at ``target``, on every series, through one pass."""
    detector = learned(system, labels[0])
    value = value_scoring(detector, ts, target)
    assert detector.score_one(Point(ts, value)) == pytest.approx(target, abs=1e-3)
    add(system, np.array([ts]), np.array([value]), *labels)
    system.analyzer.run(now=ts)
    return spike_anomalies(system, ts)


def test_a_quiet_series_stops_alarming_on_a_spike_its_default_sibling_still_alarms_on(system):
    next_ts = calm(system, START, HISTORY, QUIET, SIBLING)
    system.store.sensitivities.set(series_key(NAME, QUIET), 0.1, actor="test", reason="noisy")
    detector = learned(system, SIBLING)
    between = (detector.threshold + detector.threshold_at(0.1)) / 2

    alarmed = spike_on(system, next_ts, between, QUIET, SIBLING)

    assert alarmed == {series_key(NAME, SIBLING)}
    # Its learned state is the sibling's: the setting changed what alarms, not what it learned.
    assert learned(system, QUIET).to_state() == learned(system, SIBLING).to_state()


def test_a_loud_series_alarms_where_its_default_sibling_does_not(system):
    next_ts = calm(system, START, HISTORY, LOUD, SIBLING)
    system.store.sensitivities.set(series_key(NAME, LOUD), 10.0, actor="test", reason="missed")
    detector = learned(system, SIBLING)
    between = (detector.threshold_at(10.0) + detector.threshold) / 2

    alarmed = spike_on(system, next_ts, between, LOUD, SIBLING)

    assert alarmed == {series_key(NAME, LOUD)}
    assert learned(system, LOUD).to_state() == learned(system, SIBLING).to_state()


def test_a_series_set_back_to_the_default_alarms_again_from_the_next_pass(system):
    next_ts = calm(system, START, HISTORY, QUIET)
    key = series_key(NAME, QUIET)
    system.store.sensitivities.set(key, 0.1, actor="test", reason="noisy")
    detector = learned(system, QUIET)
    between = (detector.threshold + detector.threshold_at(0.1)) / 2
    assert spike_on(system, next_ts, between, QUIET) == set()

    after_hold = calm(system, next_ts + 1, 100, QUIET)  # well past the hold after an alarm

    system.store.sensitivities.set(key, 1.0, actor="test", reason="back to normal")

    assert spike_on(system, after_hold, between, QUIET) == {key}
