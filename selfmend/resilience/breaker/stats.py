"""What a breaker's calls did since the client last sent, as the series selfmend's patterns read.

Counted in the process, under a lock held for a few additions (never during a call), and
taken once per client send (``Client``'s ``before_send`` hook), so reporting costs a call no
storage or network trip. An interval with no calls sends nothing. The series, each labelled
``breaker`` (its name) and ``fallback`` (``yes`` when it has one: a pattern that sheds calls
to the fallback selects on it):

- ``breaker.failure_ratio``: failed calls / calls that reached the dependency (an error not in
  ``ignore``, or slower than ``slow_call_seconds`` or ``timeout_seconds``); not sent while
  every call was refused, as nothing reached the dependency.
- ``breaker.unserved_ratio``: calls that ended in an error the caller saw / all calls,
  refused ones included; a call the fallback answered, or that raised an ``ignore`` error
  (the dependency answered), was served. What the application's users see.
- ``breaker.call_ms``: the p95 of the calls' durations, the dependency's or the fallback's
  (of the latest ``SAMPLES`` of the interval).
- ``breaker.open``: 1 while the process sees the breaker refusing calls (open, half-open,
  forced open), else 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from selfmend.resilience.breaker.storage import State

SAMPLES = 1024  # durations kept per interval for the p95: the latest, overwriting the oldest
REFUSING = frozenset({State.OPEN, State.HALF_OPEN, State.FORCED_OPEN})

Record = Callable[..., None]  # Client.record(name, value, **labels)


@dataclass(frozen=True)
class Interval:
    calls: int
    attempted: int
    failures: int
    unserved: int
    p95_ms: float


class CallStats:
    """One breaker's counts since the last ``take``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        self._calls = self._attempted = self._failures = self._unserved = 0
        self._durations: list[float] = []

    def attempted(self, seconds: float, failed: bool, served: bool) -> None:
        """A call that reached the dependency."""
        with self._lock:
            self._attempted += 1
            self._failures += failed
            self._count(seconds, served)

    def refused(self, seconds: float, served: bool) -> None:
        """A call the breaker refused: ``served`` when its fallback answered."""
        with self._lock:
            self._count(seconds, served)

    def _count(self, seconds: float, served: bool) -> None:
        if len(self._durations) < SAMPLES:
            self._durations.append(seconds)
        else:
            self._durations[self._calls % SAMPLES] = seconds
        self._calls += 1
        self._unserved += not served

    def take(self) -> Interval | None:
        """The interval's counts, starting the next; None when there were no calls."""
        with self._lock:
            if not self._calls:
                return None
            calls, attempted, failures = self._calls, self._attempted, self._failures
            unserved, durations = self._unserved, self._durations
            self._start()
        durations.sort()
        p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))]
        return Interval(calls, attempted, failures, unserved, p95 * 1000)


def report(record: Record, name: str, interval: Interval, state: State, has_fallback: bool) -> None:
    """Record one breaker's interval as its series."""
    labels = {"breaker": name, "fallback": "yes" if has_fallback else "no"}
    if interval.attempted:
        record("breaker.failure_ratio", interval.failures / interval.attempted, **labels)
    record("breaker.unserved_ratio", interval.unserved / interval.calls, **labels)
    record("breaker.call_ms", interval.p95_ms, **labels)
    record("breaker.open", 1.0 if state in REFUSING else 0.0, **labels)
