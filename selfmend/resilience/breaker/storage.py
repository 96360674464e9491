"""The interface every breaker storage implements, and the values it hands back.

A storage holds each named breaker's shared state: its state and version, the sliding window
of its latest calls (count-based: the last ``window_size`` calls), its half-open probe slots,
and the settings operators changed. Every method is one atomic step (one Redis round trip, one
database transaction), so any number of processes may call it at once. Storages never decide
when to trip or close: they count and compare-and-set, and the state classes decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"  # an operator holds it open until released
    FORCED_CLOSED = "forced_closed"  # an operator holds it closed until released


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A breaker's shared state at one moment. ``version`` rises on every transition, so a
    snapshot names the state it saw and nothing later can be mistaken for it.

    ``local`` marks the state a process kept on its own while the shared storage could not be
    reached (``fallback_storage.py``): its versions went on from the last shared one, so when
    the shared state is back it replaces a local view whatever the two versions say."""

    state: State
    version: int
    since: float  # epoch seconds when the state was entered
    settings_version: int = 0
    local: bool = False

    @classmethod
    def initial(cls) -> Snapshot:
        return cls(State.CLOSED, 0, 0.0, 0)


@dataclass(slots=True)  # built on every record step: a frozen dataclass builds slower
class Window:
    """The calls in a closed breaker's sliding window: how many, how many failed, and how many
    distinct processes saw those failures."""

    calls: int
    failures: int
    failing_processes: int

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0


@dataclass(slots=True)  # built on every record step: a frozen dataclass builds slower
class Recorded:
    """What a record step found. ``window`` is set when the calls were counted in a closed
    breaker; ``probe_successes`` when they were half-open probes that succeeded. Calls admitted
    under an older version are not counted at all."""

    snapshot: Snapshot
    window: Window | None = None
    probe_successes: int | None = None


@dataclass(frozen=True)
class Moved:
    """The outcome of a compare-and-set transition: ``won`` when this caller made it."""

    won: bool
    snapshot: Snapshot


@dataclass(frozen=True)
class Claim:
    """A half-open probe slot asked for: ``granted`` when this caller may probe."""

    granted: bool
    snapshot: Snapshot


@dataclass(frozen=True)
class SharedSettings:
    """The settings the application declared (``base``) and the ones operators laid over them."""

    base: dict[str, Any] | None
    overrides: dict[str, Any]
    version: int


class BreakerStorage(Protocol):
    shared: bool  # True when other processes see the same state (Redis, the store)

    def read(self, name: str) -> Snapshot:
        """The breaker's state now (CLOSED at version 0 for a breaker never used)."""

    def record(
        self,
        name: str,
        version: int,
        process: str,
        window_size: int,
        *,
        successes: int = 0,
        failed: bool = False,
    ) -> Recorded:
        """Count calls admitted under ``version``, if it is still the breaker's, and return its
        state: ``successes`` calls that succeeded, then one that failed if ``failed``.

        Closed: append them to the window in that order (dropping the oldest past
        ``window_size``) and return the window's counts. Half-open: the successes add to the
        probe successes (a failed probe is not counted: it reopens the breaker). Either way,
        one step.
        """

    def move(self, name: str, state: State, version: int, to: State, now: float) -> Moved:
        """Compare-and-set: enter ``to`` if the breaker is still in ``state`` at ``version``.
        Entering a state empties the window and the probe slots and raises the version."""

    def claim_probe(self, name: str, version: int, probes: int) -> Claim:
        """Take one of ``probes`` half-open probe slots of ``version``, if one is left."""

    def publish_settings(self, name: str, base: dict[str, Any]) -> None:
        """Record the settings the application declared, so operators and actions see them."""

    def settings(self, name: str) -> SharedSettings: ...

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        """Replace the operators' overrides; every process applies them on its next call."""
