"""The catalogue's breaker patterns judged on the series a breaker's client sends: a failing
or slow dependency is a fault to fix only while the breaker still admits calls to it; a
breaker that opened by itself has contained it, and only a long outage goes to a person."""

from __future__ import annotations

from selfmend.detect.baseline import Band
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.models import series_key

PATTERNS = {pattern.name: pattern for pattern in BUILTIN_PATTERNS}
SLOW = PATTERNS["breaker_dependency_slow"]
FAILING = PATTERNS["breaker_dependency_failing"]
OPEN_LONG = PATTERNS["breaker_open_long"]
LABELS = {"breaker": "recommend", "fallback": "yes"}
NOW = 10_000.0


def sent(
    open_now: float, unserved: float = 0.0, open_before: float = 0.0
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """A minute of the client's sends every 5 s: calls at 1 s at p95, ``unserved`` of them
    ending in an error the caller saw, the breaker open (1) or admitting calls (0): as
    ``open_before`` until the last send, and ``open_now`` at it."""
    times = [NOW - 60 + 5 * i for i in range(1, 13)]
    series = {
        "breaker.call_ms": [(ts, 1000.0) for ts in times],
        "breaker.unserved_ratio": [(ts, unserved) for ts in times],
        "breaker.open": [(ts, open_before) for ts in times[:-1]] + [(times[-1], open_now)],
    }
    return {name: {series_key(name, LABELS): points} for name, points in series.items()}


def usual_call_ms(description: str, key: str) -> Band | None:
    """A dependency that usually answers in 20 ms."""
    if key.startswith("breaker.call_ms"):
        return Band(limit=60.0, median=20.0, low=15.0, high=30.0, history_seconds=21_600)
    return None


def holding(open_now: float, pattern=SLOW, **sends) -> dict:
    series = sent(open_now, **sends)
    return pattern.condition.holding(lambda name, since: series[name], NOW, usual_call_ms)


def test_a_slow_dependency_behind_a_breaker_that_admits_calls_is_the_fault():
    assert list(holding(open_now=0.0)) == [series_key("breaker.call_ms", LABELS)]


def test_once_the_breaker_opened_by_itself_a_shorter_timeout_is_not_the_fix():
    assert holding(open_now=1.0) == {}


def test_errors_through_a_breaker_that_stays_closed_trip_it():
    found = holding(open_now=0.0, pattern=FAILING, unserved=1.0)
    assert list(found) == [series_key("breaker.unserved_ratio", LABELS)]
    assert FAILING.actions[0].name == "breaker_force"


def test_a_breaker_that_opened_by_itself_is_not_tripped_again():
    assert holding(open_now=1.0, pattern=FAILING, unserved=1.0) == {}


def test_a_breaker_open_for_a_whole_minute_goes_to_a_person_and_a_short_opening_does_not():
    assert list(holding(open_now=1.0, pattern=OPEN_LONG, open_before=1.0)) == [
        series_key("breaker.open", LABELS)
    ]
    assert not OPEN_LONG.actions  # no switch left to turn: escalated
    assert holding(open_now=1.0, pattern=OPEN_LONG, open_before=0.0) == {}
