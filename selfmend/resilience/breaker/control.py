"""Operations on breakers by name, for operators and remediation actions: hold one open or
closed until released, trip one open as its thresholds would, and lay threshold overrides over
its declared settings.

Everything here changes the shared state, so every process using the breaker follows it. A
hold is a transition like any other (through the table, one compare-and-set, announced).
"""

from __future__ import annotations

from typing import Any

from selfmend.errors import ConfigurationError
from selfmend.resilience.breaker.circuit import Circuit
from selfmend.resilience.breaker.events import Announcer
from selfmend.resilience.breaker.settings import BreakerSettings, parse_settings, with_overrides
from selfmend.resilience.breaker.storage import BreakerStorage, SharedSettings, Snapshot, State

HOLDS = (State.FORCED_OPEN, State.FORCED_CLOSED)
_CLOSED = (State.CLOSED,)  # a trip starts here: half-open is already probing
_ATTEMPTS = 5  # moves lost to other processes before giving up


class BreakerControl:
    def __init__(self, storage: BreakerStorage, announcer: Announcer) -> None:
        self.storage = storage
        self.announcer = announcer

    def state(self, name: str) -> Snapshot:
        return self.storage.read(name)

    def hold(self, name: str, state: State, actor: str, reason: str = "") -> Snapshot:
        """Hold the breaker in ``state`` (forced open or forced closed) until released."""
        if state not in HOLDS:
            raise ConfigurationError(f"a breaker can be held {' or '.join(HOLDS)}, not {state}")
        return self._move(name, state, f"held {state} by {actor}", reason)

    def release(self, name: str, actor: str, reason: str = "") -> Snapshot:
        """End a hold: the breaker is closed and counts calls again. A breaker not held is
        left as it is."""
        return self._move(name, State.CLOSED, f"released by {actor}", reason, only_from=HOLDS)

    def trip(self, name: str, actor: str, reason: str = "") -> Snapshot:
        """Open the breaker as a breach of its thresholds would: calls go to the fallback, and
        after ``reset_timeout`` its probes let the dependency back in once it answers, unlike
        a forced-open hold, which nothing ends but a release. A held breaker is left as it is
        (an operator's hold wins), and so is one already open or half-open."""
        return self._move(name, State.OPEN, f"tripped by {actor}", reason, only_from=_CLOSED)

    def close(self, name: str, actor: str, reason: str = "") -> Snapshot:
        """Close an open or half-open breaker now, counting again. The transition table lets
        an open breaker close only through its probes or a hold, so this is a hold closed and
        its release (two transitions, both announced). Any other state is left as it is."""
        now = self.state(name)
        if now.state not in (State.OPEN, State.HALF_OPEN):
            return now
        self.hold(name, State.FORCED_CLOSED, actor, reason)
        return self.release(name, actor, reason)

    def _move(
        self,
        name: str,
        to: State,
        why: str,
        reason: str,
        only_from: tuple[State, ...] | None = None,
    ) -> Snapshot:
        circuit = Circuit(name, self.storage, self.announcer)
        for _ in range(_ATTEMPTS):
            now = circuit.view(0)
            if now.state is to or (only_from is not None and now.state not in only_from):
                return now
            moved = circuit.move(now.state, now.version, to, f"{why}: {reason}" if reason else why)
            if moved.state is to:
                return moved
        raise ConfigurationError(
            f"breaker {name!r} kept changing state; {to} not reached in {_ATTEMPTS} attempts"
        )

    def settings(self, name: str) -> SharedSettings:
        return self.storage.settings(name)

    def in_force(self, name: str) -> BreakerSettings:
        """The settings in force: as declared by the application, with the overrides."""
        shared = self.storage.settings(name)
        if shared.base is None:
            raise ConfigurationError(
                f"no process has declared breaker {name!r}, so its settings are unknown"
            )
        return with_overrides(name, parse_settings(name, shared.base), shared.overrides)

    def check_overrides(self, name: str, overrides: dict[str, Any]) -> None:
        """Refuse overrides that make invalid settings with the declared ones
        (``ConfigurationError`` naming the field)."""
        base = self.storage.settings(name).base
        if base is not None:
            with_overrides(name, parse_settings(name, base), overrides)

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        """Replace the overrides; every process lays them over its settings on its next call."""
        self.check_overrides(name, overrides)
        return self.storage.set_overrides(name, overrides)
