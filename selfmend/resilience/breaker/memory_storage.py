"""In-memory breaker storage: one process's breakers, for tests and single-process services.

A lock makes each step atomic among the process's threads; it is held for the few dictionary
operations of the step, never while a protected call runs.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any

from selfmend.resilience.breaker.storage import (
    Claim,
    Moved,
    Recorded,
    SharedSettings,
    Snapshot,
    State,
    Window,
)


@dataclass
class _Breaker:
    snapshot: Snapshot = field(default_factory=Snapshot.initial)
    calls: deque[tuple[bool, str]] = field(default_factory=deque)
    failing: Counter[str] = field(default_factory=Counter)  # failures in the window by process
    probes: int = 0
    successes: int = 0
    base: dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def window(self) -> Window:
        return Window(len(self.calls), sum(self.failing.values()), len(self.failing))

    def push(self, successes: int, failed: bool, process: str, window_size: int) -> None:
        # More successes than the window holds would only be dropped again.
        self.calls.extend(itertools.repeat((False, process), min(successes, window_size)))
        if failed:
            self.calls.append((True, process))
            self.failing[process] += 1
        while len(self.calls) > window_size:
            dropped_failed, dropped_process = self.calls.popleft()
            if dropped_failed:
                self.failing[dropped_process] -= 1
                if not self.failing[dropped_process]:
                    del self.failing[dropped_process]


class MemoryStorage:
    shared = False

    def __init__(self) -> None:
        self._breakers: dict[str, _Breaker] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> _Breaker:
        return self._breakers.setdefault(name, _Breaker())

    def seed(self, name: str, snapshot: Snapshot) -> None:
        """Start ``name`` from a state read elsewhere (with an empty window), unless it is
        already known here: a fallback goes on from the shared state it last saw."""
        with self._lock:
            self._breakers.setdefault(name, _Breaker(snapshot))

    def read(self, name: str) -> Snapshot:
        with self._lock:
            return self._get(name).snapshot

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
        with self._lock:
            breaker = self._get(name)
            snapshot = breaker.snapshot
            if snapshot.version != version:
                return Recorded(snapshot)
            if snapshot.state is State.CLOSED:
                breaker.push(successes, failed, process, window_size)
                return Recorded(snapshot, window=breaker.window())
            if snapshot.state is State.HALF_OPEN and not failed:
                breaker.successes += successes
                return Recorded(snapshot, probe_successes=breaker.successes)
            return Recorded(snapshot)

    def move(self, name: str, state: State, version: int, to: State, now: float) -> Moved:
        with self._lock:
            breaker = self._get(name)
            current = breaker.snapshot
            if (current.state, current.version) != (state, version):
                return Moved(False, current)
            breaker.snapshot = replace(current, state=to, version=current.version + 1, since=now)
            breaker.calls.clear()
            breaker.failing.clear()
            breaker.probes = breaker.successes = 0
            return Moved(True, breaker.snapshot)

    def claim_probe(self, name: str, version: int, probes: int) -> Claim:
        with self._lock:
            breaker = self._get(name)
            snapshot = breaker.snapshot
            granted = (
                snapshot.state is State.HALF_OPEN
                and snapshot.version == version
                and breaker.probes < probes
            )
            breaker.probes += granted
            return Claim(granted, snapshot)

    def publish_settings(self, name: str, base: dict[str, Any]) -> None:
        with self._lock:
            self._get(name).base = copy.deepcopy(base)

    def settings(self, name: str) -> SharedSettings:
        with self._lock:
            breaker = self._get(name)
            return SharedSettings(
                copy.deepcopy(breaker.base),
                copy.deepcopy(breaker.overrides),
                breaker.snapshot.settings_version,
            )

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        with self._lock:
            breaker = self._get(name)
            breaker.overrides = copy.deepcopy(overrides)
            breaker.snapshot = replace(
                breaker.snapshot, settings_version=breaker.snapshot.settings_version + 1
            )
        return self.settings(name)
