"""The default detector's parts, each on a series built to need it, and its configuration."""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from selfmend.detect.choice import DetectorChoice, default_detector, detector_for
from selfmend.detect.ensemble import EnsembleDetector
from selfmend.detect.mad import RollingMAD
from selfmend.detect.stream import StreamDetector

FIVE_MINUTES = 300.0
DAY = 86400.0


def daily(days: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five-minute samples of a daily cycle between 0 and 20, with a little noise."""
    timestamps = np.arange(0, days * DAY, FIVE_MINUTES)
    phase = 2 * np.pi * timestamps / DAY
    noise = np.random.default_rng(seed).normal(0, 0.5, timestamps.size)
    return timestamps, 10 + 10 * np.sin(phase) + noise


def test_a_value_normal_at_noon_is_an_anomaly_at_night():
    timestamps, values = daily(14)
    night = int((13 * DAY + 0.75 * DAY) / FIVE_MINUTES)  # the trough of day 13
    values[night] = 20.0  # the daily peak, at the wrong time of day
    seasonal = StreamDetector().score_many(timestamps, values)
    level_only = StreamDetector(seasonal=False).score_many(timestamps, values)
    threshold = StreamDetector().threshold
    assert seasonal[night] >= threshold
    assert level_only[night] < threshold
    quiet_days = slice(int(7 * DAY / FIVE_MINUTES), night)
    assert seasonal[quiet_days].max() < threshold


def test_the_weekly_offsets_find_a_weekday_level_on_a_saturday():
    timestamps = np.arange(0, 35 * DAY, FIVE_MINUTES)
    weekday = (timestamps // DAY + 4) % 7  # the epoch fell on a Thursday
    noise = np.random.default_rng(4).normal(0, 0.3, timestamps.size)
    values = 10 + 5 * np.sin(2 * np.pi * timestamps / DAY) + noise - 8 * (weekday >= 5)
    saturday = np.flatnonzero((timestamps >= 28 * DAY) & (weekday == 5))[100]
    values[saturday : saturday + 24] += 8  # open for business for two hours on the fifth Saturday

    def alarms_in_those_hours(**knobs) -> int:
        detector = StreamDetector(**knobs)
        scores = detector.score_many(timestamps, values)[saturday : saturday + 24]
        return int(np.sum(scores >= detector.threshold))

    assert alarms_in_those_hours(weekly=True) >= 1
    assert alarms_in_those_hours() == 0  # the daily baseline alone has averaged weekends in


def test_a_level_shift_too_small_for_any_one_point_is_found_first_by_the_change_statistics():
    values = np.random.default_rng(1).normal(0, 1, 1500)
    values[1000:] += 2.0  # no single point stands out, the run of them does
    timestamps = np.arange(1500.0)

    def first_alarm_after_the_shift(**knobs) -> int:
        detector = StreamDetector(**knobs)
        scores = detector.score_many(timestamps, values)
        return int(np.flatnonzero(scores[1000:] >= detector.threshold)[0])

    with_change = first_alarm_after_the_shift()
    assert with_change < 10
    assert first_alarm_after_the_shift(change_point=False) > with_change


def test_one_event_raises_one_alarm_and_noise_few():
    values = np.random.default_rng(2).normal(0, 1, 3000)
    values[2000:2010] = 50.0  # ten extreme points in a row
    detector = StreamDetector()
    alarms = np.flatnonzero(detector.score_many(np.arange(3000.0), values) >= detector.threshold)
    event = alarms[(alarms >= 2000) & (alarms < 2000 + detector.params.refractory)]
    assert event.tolist() == [2000]
    assert np.sum(alarms < 2000) < 2000 * 0.01


def test_record_growth_must_exceed_the_margin():
    with pytest.raises(ValidationError, match="record_growth"):
        StreamDetector(margin=1.5, record_growth=1.4)


def test_state_of_two_weeks_fits_in_two_kilobytes_and_resumes_exactly():
    timestamps, values = daily(14)
    detector, whole = StreamDetector(weekly=True), StreamDetector(weekly=True)
    expected = whole.score_many(timestamps, values)
    half = timestamps.size // 2
    detector.score_many(timestamps[:half], values[:half])
    text = json.dumps(detector.to_state())
    assert len(text) <= 2048
    resumed = StreamDetector.from_state(json.loads(text))
    assert resumed.params.weekly
    assert np.array_equal(resumed.score_many(timestamps[half:], values[half:]), expected[half:])


def test_the_user_picks_a_detector_by_series_glob_and_others_keep_the_default():
    choices = (DetectorChoice(series="redis.*", detector="rolling_mad", params={"window": 60}),)
    chosen = detector_for("redis.memory_used", choices)
    assert isinstance(chosen, RollingMAD)
    assert chosen.params.window == 60
    assert isinstance(detector_for("postgres.connections", choices), EnsembleDetector)
    assert isinstance(default_detector("anything"), EnsembleDetector)


def test_a_bad_choice_names_the_field():
    with pytest.raises(ValidationError, match=r"params\.window"):
        DetectorChoice(series="*", detector="rolling_mad", params={"window": 2})
    with pytest.raises(ValidationError, match="detector"):
        DetectorChoice(series="*", detector="prophet")
    with pytest.raises(ValidationError, match=r"params\.bogus"):
        DetectorChoice(series="*", detector="stream", params={"bogus": 1})


def test_a_changed_choice_starts_learning_anew_and_an_unchanged_one_resumes():
    timestamps, values = daily(2)
    trained = StreamDetector()
    trained.score_many(timestamps, values)
    state = trained.to_state()
    assert DetectorChoice(series="*", detector="stream").restore(state).band() == trained.band()
    changed = DetectorChoice(series="*", detector="stream", params={"window": 100})
    assert changed.restore(state).band() is None
    assert isinstance(DetectorChoice(series="*", detector="rolling_mad").restore(state), RollingMAD)
