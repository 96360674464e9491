"""Notice, at most once a second, that a database's schema or its healing rules changed.

The schema watch publishes ``schema.version.<database>`` in the store's live settings; people
and the optimizer change rules in the store. A writer in any process compares both with what
it last saw before a write and drops its cached tables and rules when either moved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_UNREAD = object()


class ChangeWatch:
    def __init__(self, read: Callable[[], object], interval: float = 1.0) -> None:
        self.read = read
        self.interval = interval
        self._seen: object = _UNREAD
        self._next_read = 0.0
        self._lock = threading.Lock()

    def changed(self) -> bool:
        """True once after the value moved; the first read only sets the baseline."""
        if time.monotonic() < self._next_read:
            return False
        with self._lock:
            now = time.monotonic()
            if now < self._next_read:
                return False
            self._next_read = now + self.interval
            value = self.read()
            moved = self._seen is not _UNREAD and value != self._seen
            self._seen = value
            return moved
