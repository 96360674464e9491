"""Calls through a breaker to a service that fails, shared by the breaker tests."""

from __future__ import annotations

from selfmend.errors import CircuitOpen


class Down(Exception):
    """The service behind the breaker failing."""


def fail() -> None:
    raise Down("service down")


def call_many(breaker, count: int) -> dict[str, int]:
    """``count`` failing calls; how many reached the service and how many were refused."""
    outcomes = {"failed": 0, "refused": 0}
    for _ in range(count):
        try:
            breaker.call(fail)
        except Down:
            outcomes["failed"] += 1
        except CircuitOpen:
            outcomes["refused"] += 1
    return outcomes
