"""Incident correlation: which signals belong together, and which of them is the root cause.

One fault shows on many series: a slow database raises API latency, queue depth and error
logs within a minute. Each of those is a ``Signal``; related signals become one incident, so a
person is told once and selfmend fixes the cause rather than each symptom.

- **Related** series share a component: the first segment of the series name (``postgres``,
  ``redis``, ``celery``) or any label value (``service="shop"`` and ``database="shop"``).
- **Root cause** ranks earliest onset first, with dependency hints: a series in a lower layer
  (database, then cache, then queues and workers, then HTTP) is ranked as if it started
  ``tolerance`` seconds earlier per layer, because its trouble spreads upwards, and a later
  detection of it (a longer pattern window) is no sign that it came second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from selfmend.models import Severity, parse_series_key

LAYERS = {
    "postgres": 0, "postgresql": 0, "db": 0, "database": 0, "mysql": 0,
    "redis": 1, "cache": 1,
    "celery": 2, "queue": 2, "worker": 2, "process": 2,
    "http": 3, "api": 3, "web": 3,
}  # fmt: skip
UNKNOWN_LAYER = 2


@dataclass(frozen=True)
class Signal:
    """One thing that fired in an analyze pass: a pattern match or a detector's alarm."""

    pattern: str
    target: str
    severity: Severity
    onset: float
    value: float
    described: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixable: bool = False

    def member(self) -> dict[str, Any]:
        """How the signal is listed in its incident's evidence."""
        return {
            "pattern": self.pattern,
            "target": self.target,
            "onset": self.onset,
            "value": self.value,
            "described": self.described,
        }


def components(target: str) -> frozenset[str]:
    try:
        name, labels = parse_series_key(target)
    except ValueError:
        return frozenset({target})
    return frozenset({name.split(".", 1)[0], *labels.values()})


def related(a: str, b: str) -> bool:
    return bool(components(a) & components(b))


def layer(target: str) -> int:
    return min((LAYERS.get(c, UNKNOWN_LAYER) for c in components(target)), default=UNKNOWN_LAYER)


def priority(onset: float, target: str, tolerance: float) -> float:
    """Lower is more likely the root cause."""
    return onset + layer(target) * tolerance


def rank(members: Iterable[dict[str, Any]], tolerance: float) -> list[dict[str, Any]]:
    """Members (``Signal.member()`` dicts) most likely root cause first."""
    return sorted(members, key=lambda m: priority(m["onset"], m["target"], tolerance))
