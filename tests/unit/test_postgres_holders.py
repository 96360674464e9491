"""The built-in patterns on a query or transaction that holds the database up (issue 14's lab):
each fires while its fault still stands, against a past whose every statement a 5 s statement
timeout ended, and its action's bound finds the session the condition saw."""

import random

import pytest

from selfmend.models import Sample
from selfmend.system import System
from tests.unit.conftest import built_in

NOW = 1_000_000.0
HOUR = 3600.0
EVERY = 5.0  # the collector's interval
LABELS = {"database": "shop"}


def record(system: System, series: str, points: list[tuple[float, float]]) -> None:
    system.store.samples.insert(
        [Sample(series=series, ts=ts, value=value, labels=LABELS) for ts, value in points]
    )


def past(until: float, usual: float) -> list[tuple[float, float]]:
    """An hour of samples up to ``until``: ms-long statements and, for ten minutes of it, lock
    waits a 5 s statement timeout ended, reaching ``usual`` seconds."""
    rng = random.Random(14)
    points = []
    for step in range(int(HOUR / EVERY)):
        ts = until - HOUR + step * EVERY
        waits = until - 40 * 60 <= ts < until - 30 * 60
        points.append((ts, rng.uniform(0, usual) if waits else rng.uniform(0, 0.05)))
    return points


def first_firing(system: System, name: str, series: str, points: list[tuple[float, float]]):
    """The fault's age at the first analysis pass (every 10 s) the pattern fires on, its samples
    recorded as the collector would, one every 5 s."""
    for step, (ts, value) in enumerate(points):
        record(system, series, [(ts, value)])
        if step % 2 == 0 and any(m.pattern.name == name for m in system.analyzer.matches(ts)):
            return ts - NOW
    return None


def test_a_query_running_long_is_caught_a_minute_past_the_usual_not_two(system):
    """The series is the query's age: a window of a minute of it over a minute's limit waited
    for the query to run two, longer than a runaway report was left running in the lab."""
    series = "postgres.longest_query_seconds"
    record(system, series, past(NOW, usual=5.0))
    running = [(NOW + step * EVERY, step * EVERY) for step in range(40)]

    fired_at = first_firing(system, "postgres_query_running_long", series, running)

    assert fired_at is not None and fired_at <= 90


def test_a_blocker_whose_waiters_time_out_is_caught_though_the_queue_dips(system):
    """The blocker's transaction ages while the statement timeout empties the queue one sample
    in three (the series is then 0): the condition still fires within a minute."""
    series = "postgres.oldest_blocker_seconds"
    record(system, series, past(NOW, usual=0.5))
    ages = [step * EVERY for step in range(24)]
    blocking = [(NOW + age, 0.0 if step % 3 == 2 else age) for step, age in enumerate(ages)]

    fired_at = first_firing(system, "postgres_lock_waits", series, blocking)

    assert fired_at is not None and fired_at <= 60


def test_sessions_left_idle_in_their_transactions_are_caught_after_a_minute_and_found(system):
    """The collector counts 0 while no session idles in a transaction: a leak of 20 fires once
    a minute of samples saw them, and they are then over the action's bound."""
    series = "postgres.connections_by_state"
    labels = {**LABELS, "state": "idle in transaction"}
    before = [(NOW - HOUR + step * EVERY, 0.0) for step in range(int(HOUR / EVERY))]
    leak = [(NOW + step * EVERY, 20.0) for step in range(30)]
    for ts, value in before:
        system.store.samples.insert([Sample(series=series, ts=ts, value=value, labels=labels)])
    fired_at = None
    for step, (ts, value) in enumerate(leak):
        system.store.samples.insert([Sample(series=series, ts=ts, value=value, labels=labels)])
        matches = system.analyzer.matches(ts) if step % 2 == 0 else []
        if any(m.pattern.name == "postgres_idle_in_transaction" for m in matches):
            fired_at = ts - NOW
            break

    [action] = built_in("postgres_idle_in_transaction").actions
    assert fired_at is not None and fired_at <= 75
    assert action.params["older_than_seconds"] <= fired_at


@pytest.mark.parametrize(
    ("pattern", "action", "bound"),
    [
        ("postgres_query_running_long", "pg_cancel_queries", "older_than_seconds"),
        ("postgres_lock_waits", "pg_end_blockers", "transaction_seconds"),
    ],
)
def test_the_action_bound_is_the_limit_the_condition_fired_on(pattern, action, bound):
    """The condition's series is the age the action bounds (the oldest query; the oldest root
    blocker's transaction), and the bound is the limit the incident crossed, so the session it
    fired on is over the bound when the plan looks, and no session within the usual is."""
    found = built_in(pattern)
    [condition] = found.condition.metric_conditions()
    [params] = [a.params for a in found.actions if a.name == action]
    assert condition.op in (">", ">=")
    assert params[bound] == "{limit}"
