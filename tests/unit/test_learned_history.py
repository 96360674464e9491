"""Learned bands leave incidents out (issue 14): an anomaly must not become the new normal. A
fault an incident covered an hour ago is learned as if it had not happened, so its second
occurrence fires; a series no incident was on learns from all of its windows."""

import random

import pytest
from sqlalchemy import update

from selfmend.config import Settings
from selfmend.detect.baseline import Band
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.history import Baselines
from selfmend.models import Sample
from selfmend.store.tables import incidents
from selfmend.system import System

NOW = 1_000_020.0
HOUR = 3600.0
EVERY = 5.0
LOCKS = "postgres_lock_waits"
SHOP = 'postgres.oldest_blocker_seconds{database="shop"}'
BILLING = 'postgres.oldest_blocker_seconds{database="billing"}'
FAULT = (NOW - HOUR, NOW - HOUR + 600)  # ten minutes of a blocker ageing on, an hour ago


@pytest.fixture
def system(tmp_path):
    return System.from_settings(Settings(home=tmp_path), patterns=BUILTIN_PATTERNS)


@pytest.fixture
def condition():
    [pattern] = [pattern for pattern in BUILTIN_PATTERNS if pattern.name == LOCKS]
    return pattern.condition


def blocker_ages(since: float, until: float, fault: tuple[float, float] | None = FAULT):
    """A blocker's age every 5 s in ``(since, until]``: under 2 s as usual, ageing from 0 over
    ``fault``, and its points left out where ``fault`` is None (as if the stretch were absent)."""
    rng = random.Random(14)
    points = []
    ts = since + EVERY
    while ts <= until:
        usual = rng.uniform(0.0, 2.0)
        start, stop = FAULT
        if not start < ts <= stop:
            points.append((ts, usual))
        elif fault is not None:
            points.append((ts, ts - start))
        ts += EVERY
    return points


def push(system: System, key: str, points) -> None:
    database = key.split('"')[1]
    system.store.samples.insert(
        [
            Sample(series=key.split("{")[0], ts=ts, value=value, labels={"database": database})
            for ts, value in points
        ]
    )


def incident_on(system: System, key: str, start: float, stop: float | None, members=()) -> None:
    """An incident on ``key`` whose signal's window began at ``start`` (opened a window later),
    closed at ``stop`` (None: still open), with other series grouped under it."""
    targets = [key, *members]
    incident, _ = system.store.incidents.open(
        pattern=LOCKS,
        target=key,
        severity="high",
        series_key=key,
        root_cause="test",
        evidence={"members": [{"pattern": LOCKS, "target": t, "onset": start} for t in targets]},
    )
    closed = {} if stop is None else {"closed_at": stop, "status": "resolved", "open_key": None}
    with system.store.engine.begin() as connection:
        connection.execute(
            update(incidents)
            .where(incidents.c.id == incident.id)
            .values(opened_at=start + 60, updated_at=start + 60, **closed)
        )


def band(system: System, condition, key: str) -> Band | None:
    return Baselines(system.store, [condition]).at(NOW)(condition.describe(), key)


def fired(system: System) -> list[str]:
    return [m.target for m in system.analyzer.matches(NOW) if m.pattern.name == LOCKS]


def test_a_fault_an_incident_covered_is_learned_as_if_it_were_absent(system, condition, tmp_path):
    push(system, SHOP, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60))
    incident_on(system, SHOP, *FAULT)
    absent = System.from_settings(Settings(home=tmp_path / "absent"), patterns=BUILTIN_PATTERNS)
    push(absent, SHOP, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60, fault=None))

    learned, without = band(system, condition, SHOP), band(absent, condition, SHOP)

    assert learned is not None and without is not None
    assert (learned.limit, learned.median, learned.low, learned.high) == (
        without.limit,
        without.median,
        without.low,
        without.high,
    )
    assert learned.history_seconds == without.history_seconds == 6 * HOUR - 600
    assert learned.left_out_seconds == 600
    assert learned.limit < 13  # the floor over a usual median of about 1 s, not the fault's ages


def test_the_same_fault_again_within_the_history_fires(system):
    push(system, SHOP, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60))
    push(system, SHOP, [(NOW - 60 + t, t) for t in range(5, 61, 5)])  # ageing again

    assert fired(system) == []  # learned from its first occurrence: its ages are usual now

    incident_on(system, SHOP, *FAULT)
    again = System.from_settings(system.settings, patterns=BUILTIN_PATTERNS)

    assert fired(again) == [SHOP]
    [match] = [m for m in again.analyzer.matches(NOW) if m.pattern.name == LOCKS]
    [judged] = match.evidence["limits"].values()
    assert judged["left_out_seconds"] == 600


def test_a_series_no_incident_was_on_learns_from_all_its_windows(system, condition):
    push(system, SHOP, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60))
    push(system, BILLING, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60))
    incident_on(system, BILLING, *FAULT)

    learned = band(system, condition, SHOP)

    assert learned is not None
    assert learned.history_seconds == 6 * HOUR
    assert learned.left_out_seconds == 0
    assert learned.limit > 300  # its fault's ages lie past the 0.99 edge, as before


def test_a_symptom_grouped_under_another_series_incident_is_left_out_too(system, condition):
    push(system, SHOP, blocker_ages(NOW - 6 * HOUR - 120, NOW - 60))
    incident_on(system, BILLING, *FAULT, members=[SHOP])

    learned = band(system, condition, SHOP)

    assert learned is not None and learned.left_out_seconds == 600 and learned.limit < 13


def test_a_series_mostly_under_an_open_incident_is_still_warming_up(system, condition):
    push(system, SHOP, blocker_ages(NOW - 2 * HOUR, NOW - 60, fault=None))
    incident_on(system, SHOP, NOW - 2 * HOUR + 20 * 60, None)  # open since, and on

    assert band(system, condition, SHOP) is None  # 20 minutes usual: under the 30 of warm-up


def test_one_read_of_incidents_per_relearning_whatever_the_conditions(system, monkeypatch):
    reads = []
    read = system.store.incidents.open_since
    monkeypatch.setattr(system.store.incidents, "open_since", lambda s: reads.append(s) or read(s))
    push(system, SHOP, blocker_ages(NOW - HOUR, NOW - 60, fault=None))

    system.analyzer.matches(NOW)
    system.analyzer.matches(NOW + 10)  # within the relearn: nothing read

    assert len(reads) == 1


def test_a_limit_recorded_before_anything_was_left_out_still_reads():
    recorded = {"learned_limit": 12.0, "median": 1.0, "band": [0.1, 1.9], "history_seconds": 600}

    assert Band.from_evidence(recorded).left_out_seconds == 0.0
