"""Transitions as events: every listener hears each one, from the process that made it.

Built-in listeners count transitions in Prometheus and write them to the store's
``breaker_events`` table, which the weekly optimizer learns thresholds from. A listener that
raises is logged and never breaks the call that made the transition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter

from selfmend.errors import is_interruption
from selfmend.resilience.breaker.storage import State

log = structlog.get_logger(__name__)

TRANSITIONS_TOTAL = Counter(
    "selfmend_breaker_transitions_total",
    "Circuit breaker transitions made by this process.",
    ["breaker", "from_state", "to_state"],
)


@dataclass(frozen=True)
class Transition:
    breaker: str
    from_state: State
    to_state: State
    version: int  # the breaker's version after the transition: the order of transitions
    reason: str
    process: str
    at: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["created_at"] = row.pop("at")
        return {**row, "from_state": str(self.from_state), "to_state": str(self.to_state)}


Listener = Callable[[Transition], None]


def count_in_prometheus(transition: Transition) -> None:
    TRANSITIONS_TOTAL.labels(
        transition.breaker, str(transition.from_state), str(transition.to_state)
    ).inc()


class Announcer:
    """Tells every listener about a transition; one failing listener does not stop the rest."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self.listeners: list[Listener] = [count_in_prometheus, *listeners]

    def add(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def announce(self, transition: Transition) -> None:
        for listener in self.listeners:
            try:
                listener(transition)
            except Exception as error:
                if is_interruption(error):
                    raise
                log.exception(
                    "breaker.listener_failed",
                    breaker=transition.breaker,
                    listener=getattr(listener, "__qualname__", repr(listener)),
                    to_state=str(transition.to_state),
                )
