"""The catalogue's breaker patterns judged on the series a breaker's client sends: a slow
dependency is a fault to cut short only while the breaker still admits calls to it."""

from __future__ import annotations

from selfmend.detect.baseline import Band
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.models import series_key

[SLOW] = [pattern for pattern in BUILTIN_PATTERNS if pattern.name == "breaker_dependency_slow"]
LABELS = {"breaker": "recommend", "fallback": "yes"}
NOW = 10_000.0


def sent(open_now: float) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """A minute of the client's sends every 5 s: calls at 1 s at p95, all of them served (the
    fallback answers refused ones), the breaker open (1) or admitting calls (0) at the last."""
    times = [NOW - 60 + 5 * i for i in range(1, 13)]
    series = {
        "breaker.call_ms": [(ts, 1000.0) for ts in times],
        "breaker.unserved_ratio": [(ts, 0.0) for ts in times],
        "breaker.open": [(ts, 0.0) for ts in times[:-1]] + [(times[-1], open_now)],
    }
    return {name: {series_key(name, LABELS): points} for name, points in series.items()}


def usual_call_ms(description: str, key: str) -> Band | None:
    """A dependency that usually answers in 20 ms."""
    if key.startswith("breaker.call_ms"):
        return Band(limit=60.0, median=20.0, low=15.0, high=30.0, history_seconds=21_600)
    return None


def holding(open_now: float) -> dict:
    series = sent(open_now)
    return SLOW.condition.holding(lambda name, since: series[name], NOW, usual_call_ms)


def test_a_slow_dependency_behind_a_breaker_that_admits_calls_is_the_fault():
    assert list(holding(open_now=0.0)) == [series_key("breaker.call_ms", LABELS)]


def test_once_the_breaker_opened_by_itself_a_shorter_timeout_is_not_the_fix():
    assert holding(open_now=1.0) == {}
