"""Live settings as the application reads them: cached for a moment, and never an exception.

A read goes to the store at most once per ``ttl`` seconds per key. When the store cannot be
read, the last value known (or the caller's default, for a key never read) is returned and the
trouble is logged once, then rate-limited. While the store is away, the application's threads
never wait on it: for ``retry_seconds`` after a failure nobody tries it, and then one thread
tries while the others go on with what is known. Only a read that was already under way when
the store went away waits for its connect timeout.

Every read also notes its key, a set add on the caller's thread and nothing more: the client's
flusher thread reports the keys (``keys_to_report``), so selfmend changes only settings some
application reads.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from selfmend.client.quiet import QuietLog

_MISSING = object()
# Keys noted between two reports at most: an application that builds keys from data must not
# grow the set without bound.
MAX_KEYS_NOTED = 1000


class Controls(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, actor: str) -> None: ...


class LiveSettings:
    def __init__(
        self,
        controls: Controls,
        *,
        ttl: float,
        quiet: QuietLog,
        retry_seconds: float = 5.0,
        report_every: float = 60.0,
    ) -> None:
        self.controls = controls
        self.ttl = ttl
        self.quiet = quiet
        self.retry_seconds = retry_seconds
        self.report_every = report_every
        self._noted: set[str] = set()  # keys read since the last report
        self._reported: set[str] = set()  # keys ever reported
        self._reported_at = -report_every
        self._values: dict[str, tuple[float, Any]] = {}
        self._away = False
        self._retry_at = 0.0
        # Taken without waiting, by the one thread that tries the store while it is away.
        self._probe = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        """The setting's value. The first read of an unset key stores ``default``, so the
        operator (and the actions that move a setting by a delta) see the value in use."""
        if len(self._noted) < MAX_KEYS_NOTED:
            self._noted.add(key)
        cached = self._values.get(key)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        fallback = cached[1] if cached else default
        if self._away:
            if time.monotonic() < self._retry_at or not self._probe.acquire(blocking=False):
                return fallback
            try:
                value, error = self._read(key, default)
            finally:
                self._probe.release()
        else:
            value, error = self._read(key, default)
        if error is None:
            self._away = False
            self._values[key] = (time.monotonic(), value)
            return value
        self.quiet.warning(
            "control", "selfmend client: live settings unreadable, using the last known", error
        )
        return fallback

    def keys_to_report(self) -> list[str]:
        """The keys read since the last report, when one of them was never reported or
        ``report_every`` seconds have passed; else none. For one thread, the flusher: set
        copies and in-place differences are atomic, so a read noted meanwhile is never lost."""
        noted = self._noted.copy()
        now = time.monotonic()
        if not noted or (noted <= self._reported and now - self._reported_at < self.report_every):
            return []
        self._noted -= noted
        if len(self._reported) >= MAX_KEYS_NOTED:
            self._reported = set()  # bounded too: a forgotten key is only reported again
        self._reported |= noted
        self._reported_at = now
        return sorted(noted)

    def _read(self, key: str, default: Any) -> tuple[Any, Exception | None]:
        """The stored value (``default``, stored, for an unset key), or the error that stopped
        the read; on an error, nobody tries again for ``retry_seconds`` from now."""
        try:
            value = self.controls.get(key, _MISSING)
            if value is _MISSING:
                self.controls.set(key, default, "client default")
                value = default
        except Exception as error:
            self._retry_at = time.monotonic() + self.retry_seconds
            self._away = True
            return None, error
        return value, None
