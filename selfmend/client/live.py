"""Live settings as the application reads them: cached for a moment, and never an exception.

A read goes to the store at most once per ``ttl`` seconds per key. When the store cannot be
read, the last value known (or the caller's default, for a key never read) is returned, the
trouble is logged once and then rate-limited, and the store is not tried again for
``retry_seconds``, so an application reading a setting in a hot loop does not wait on a
connect timeout each time.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from selfmend.client.quiet import QuietLog

_MISSING = object()


class Controls(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, actor: str) -> None: ...


class LiveSettings:
    def __init__(
        self, controls: Controls, *, ttl: float, quiet: QuietLog, retry_seconds: float = 5.0
    ) -> None:
        self.controls = controls
        self.ttl = ttl
        self.quiet = quiet
        self.retry_seconds = retry_seconds
        self._values: dict[str, tuple[float, Any]] = {}
        self._retry_at = 0.0

    def get(self, key: str, default: Any = None) -> Any:
        """The setting's value. The first read of an unset key stores ``default``, so the
        operator (and the actions that move a setting by a delta) see the value in use."""
        now = time.monotonic()
        cached = self._values.get(key)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        fallback = cached[1] if cached else default
        if now < self._retry_at:
            return fallback
        try:
            value = self.controls.get(key, _MISSING)
            if value is _MISSING:
                self.controls.set(key, default, actor="client default")
                value = default
        except Exception as error:
            self._retry_at = now + self.retry_seconds
            self.quiet.warning(
                "control", "selfmend client: live settings unreadable, using the last known", error
            )
            return fallback
        self._values[key] = (now, value)
        return value
