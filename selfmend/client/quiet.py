"""Trouble the client reports without flooding the application's log: the first occurrence
of each kind at once, then at most one line per ``every`` seconds saying how many were held
back. A store or Redis that is down fails every call; the application should hear it once."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("selfmend.client")


class QuietLog:
    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str, error: BaseException | None = None) -> None:
        """Log ``message`` for ``kind`` unless one was logged under ``every`` seconds ago. The
        decision is taken under the lock and the line written outside it: a handler that calls
        back into the client (``client.LogHandler`` on the root logger) finds no lock held."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -self.every) < self.every:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        suffix = f" ({held} more since the last report)" if held else ""
        cause = f": {type(error).__name__}: {error}" if error is not None else ""
        log.warning("%s%s%s", message, cause, suffix)
