"""The successes a closed breaker counted in this process and has not sent to the storage yet.

A healthy closed breaker makes no round trip per call: each success is counted here, and the
count goes with the process's next trip (a failure, the renewal of a view older than
``sync_seconds``, or a window's worth of successes). A count belongs to the breaker version
its calls were admitted under: the storage counts calls of the current version only, so
successes of an older version are dropped here instead of being sent to be refused.

Successes still here when the process exits are lost. That costs only successes, so at worst
the other processes see a failure rate a little higher than it was.
"""

from __future__ import annotations

import threading


class PendingSuccesses:
    """One breaker's unsent successes; its lock is held for a count, never during a call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._count = 0

    def add(self, version: int) -> int:
        """Count one success admitted under ``version``; how many are pending now (0 when the
        call was admitted before a version this process has already counted under)."""
        with self._lock:
            if version < self._version:
                return 0
            if version > self._version:
                self._version, self._count = version, 0
            self._count += 1
            return self._count

    def restart(self) -> None:
        """Forget the count and its version: the breaker's versions start over (the process
        rejoined the shared state after counting on its own)."""
        with self._lock:
            self._version = self._count = 0

    def take(self, version: int) -> int:
        """The successes pending under ``version``, for a trip of that version to send; none
        are left. Successes of an older version are dropped, and those of a newer one are left
        for a trip of their own."""
        with self._lock:
            if version < self._version:
                return 0
            taken = self._count if version == self._version else 0
            self._version, self._count = version, 0
            return taken
