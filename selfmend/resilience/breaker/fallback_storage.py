"""A shared breaker storage (Redis, or the store) with a window in the process for when it
cannot be reached.

Without it, a breaker whose Redis or store is down passes every call unrecorded: it never
opens, however often the service behind it fails. With it, the breaker goes on counting in a
memory storage of the process's own, starting from the last shared state it saw, so it still
opens after ``failure_threshold`` failures (the process's own failures: no other process's
reach it). It says so in one warning line, reminds at most every ``remind_seconds`` while the
storage stays away, and tries the shared storage again at most every ``retry_seconds``, not on
every call: a Redis or store that does not answer costs the one call that tries its connect
timeout. The first step that reaches it again rejoins the shared state, which replaces the
process's own view (``Snapshot.local``) whatever it had counted alone.

Operators' steps (holds, overrides) are not for a process's fallback: ``BreakerControl`` works
on ``shared`` directly, and ``set_overrides`` here goes there too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import structlog

from selfmend.errors import is_interruption
from selfmend.resilience.breaker.memory_storage import MemoryStorage
from selfmend.resilience.breaker.storage import (
    BreakerStorage,
    Claim,
    Moved,
    Recorded,
    SharedSettings,
    Snapshot,
    State,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

RETRY_SECONDS = 5.0
REMIND_SECONDS = 300.0


class FallbackStorage:
    """``shared`` while it answers; a memory storage of this process's while it raises errors
    that ``unreachable`` says are the storage's being away (``redis_storage.unreachable``,
    ``store_storage.unreachable``), tried again every ``retry_seconds``. Any other error
    passes, as it would without the fallback."""

    shared = True

    def __init__(
        self,
        shared: BreakerStorage,
        unreachable: Callable[[BaseException], bool],
        *,
        retry_seconds: float = RETRY_SECONDS,
        remind_seconds: float = REMIND_SECONDS,
    ) -> None:
        self.primary = shared
        self.unreachable = unreachable
        self.retry_seconds = retry_seconds
        self.remind_seconds = remind_seconds
        self._lock = threading.Lock()  # held for the bookkeeping below, never for a step
        self._away_since: float | None = None
        self._next_try = 0.0
        self._reminded = 0.0
        self._local = MemoryStorage()
        self._seeded: set[str] = set()
        self._last_shared: dict[str, Snapshot] = {}
        self._last_settings: dict[str, SharedSettings] = {}
        self._unpublished: dict[str, dict[str, Any]] = {}

    @property
    def away(self) -> bool:
        """True while the breakers count in this process."""
        return self._away_since is not None

    # -- the storage's steps ----------------------------------------------------------------

    def read(self, name: str) -> Snapshot:
        return self._step(name, lambda storage: storage.read(name), _itself)

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
        return self._step(
            name,
            lambda storage: storage.record(
                name, version, process, window_size, successes=successes, failed=failed
            ),
            _snapshot_of,
        )

    def move(self, name: str, state: State, version: int, to: State, now: float) -> Moved:
        return self._step(
            name, lambda storage: storage.move(name, state, version, to, now), _snapshot_of
        )

    def claim_probe(self, name: str, version: int, probes: int) -> Claim:
        return self._step(
            name, lambda storage: storage.claim_probe(name, version, probes), _snapshot_of
        )

    def publish_settings(self, name: str, base: dict[str, Any]) -> None:
        """Sent when the shared storage is reached again, if it cannot be now."""
        if self._try_shared():
            try:
                self.primary.publish_settings(name, base)
                self._reached()
                return
            except Exception as error:
                if not self._away(error):
                    raise
                self._went_away(error)
        with self._lock:
            self._unpublished[name] = base

    def settings(self, name: str) -> SharedSettings:
        """The shared settings; while away, the last ones read, or none with a version no
        breaker has, so it asks again once the storage is back."""
        if self._try_shared():
            try:
                found = self.primary.settings(name)
            except Exception as error:
                if not self._away(error):
                    raise
                self._went_away(error)
            else:
                self._reached()
                self._last_settings[name] = found
                return found
        return self._last_settings.get(name) or SharedSettings(None, {}, -1)

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        return self.primary.set_overrides(name, overrides)

    # -- choosing the storage ---------------------------------------------------------------

    def _step(
        self,
        name: str,
        step: Callable[[Any], T],
        snapshot_of: Callable[[T], Snapshot],
    ) -> T:
        """``step`` on the shared storage when it is to be tried, else on the local one."""
        if self._try_shared():
            try:
                result = step(self.primary)
            except Exception as error:
                if not self._away(error):
                    raise
                self._went_away(error)
            else:
                self._last_shared[name] = snapshot_of(result)
                self._reached()
                return result
        return step(self._local_for(name))

    def _try_shared(self) -> bool:
        """Whether this step goes to the shared storage: always while it answers; while it
        is away, one step every ``retry_seconds``."""
        if self._away_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_seconds
            return True

    def _away(self, error: Exception) -> bool:
        """Whether ``error`` says the shared storage is away; never so for the stage's soft
        time limit, even when the connection it interrupted fails in its place."""
        return self.unreachable(error) and not is_interruption(error)

    def _local_for(self, name: str) -> MemoryStorage:
        with self._lock:
            local = self._local
            if name not in self._seeded:
                last = self._last_shared.get(name) or Snapshot.initial()
                local.seed(name, replace(last, local=True))
                self._seeded.add(name)
        return local

    def _went_away(self, error: BaseException) -> None:
        """Note the shared storage away; what to say is decided under the lock and said after
        it, so a log handler that calls a breaker on this thread finds no lock held."""
        with self._lock:
            now = time.monotonic()
            self._next_try = now + self.retry_seconds
            if self._away_since is None:
                self._away_since = self._reminded = now
                first, away = True, 0.0
            elif now - self._reminded >= self.remind_seconds:
                self._reminded = now
                first, away = False, now - self._away_since
            else:
                return
        if first:
            log.warning(
                "breaker.storage_unreachable",
                error=_one_line(error),
                retry_seconds=self.retry_seconds,
                meanwhile="breakers count this process's calls on their own",
            )
        else:
            log.warning(
                "breaker.storage_still_unreachable",
                error=_one_line(error),
                away_seconds=round(away, 1),
            )

    def _reached(self) -> None:
        if self._away_since is None:
            return
        with self._lock:
            if self._away_since is None:
                return
            away = time.monotonic() - self._away_since
            self._away_since = None
            self._local, self._seeded = MemoryStorage(), set()
            unpublished, self._unpublished = self._unpublished, {}
        log.info("breaker.storage_rejoined", away_seconds=round(away, 1))
        for name, base in unpublished.items():
            self.publish_settings(name, base)


def _itself(snapshot: Snapshot) -> Snapshot:
    return snapshot


def _snapshot_of(result: Recorded | Moved | Claim) -> Snapshot:
    return result.snapshot


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
