"""The client's buffer and the one thread that sends it.

The application's threads only append to the buffer, under a lock held for the append alone:
no caller of ``record`` or of a log handler ever pushes, logs or waits on the network. The
flusher thread sends in batches; a batch whose push failed is kept and sent again byte for byte
(a push whose reply was lost may have landed, and only the same bytes let the store's digest
check store it once). Past ``max_buffered`` items the oldest go first, as the newest say most
about the present.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from selfmend.client.quiet import QuietLog

FLUSHER_THREAD = "selfmend-client-flush"


class Pushes(Protocol):
    """The half of ``collect.push.PushBuffer`` the client uses, named here so that importing
    the client does not import the collect stage (SQLAlchemy, the store)."""

    def push(self, payload: str) -> None: ...


class Sender:
    def __init__(
        self,
        buffer: Pushes,
        *,
        batch_size: int,
        every: float,
        max_buffered: int,
        before_send: Callable[[], None] = lambda: None,
        quiet: QuietLog | None = None,
    ) -> None:
        self.buffer = buffer
        self.batch_size = batch_size
        self.every = every
        self.max_buffered = max_buffered
        self.before_send = before_send
        self.quiet = quiet or QuietLog()
        self.dropped = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._unsent: deque[tuple[str, int]] = deque()  # (payload, items), oldest first
        self._unsent_items = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Passes started and finished, and items sent in all: flush() waits for a pass that
        # started after it asked, so everything added before the call is in it.
        self._passes = threading.Condition()
        self._started = self._finished = self._sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name=FLUSHER_THREAD)
        self.thread.start()

    def add(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(item)
            while self._pending and len(self._pending) + self._unsent_items > self.max_buffered:
                if self._unsent:
                    _, count = self._unsent.popleft()
                    self._unsent_items -= count
                    self.dropped += count
                else:
                    self._pending.popleft()
                    self.dropped += 1
            full = len(self._pending) >= self.batch_size
        if full:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> int:
        """Have the flusher send everything added so far and wait for it, ``timeout`` at most;
        returns how many items were sent meanwhile. On the flusher thread (a handler the
        flusher's own logging reached) it returns at once: the pass under way sends them."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return 0  # the pass under way sends them, or the client was closed
        with self._passes:
            target, sent_before = self._started + 1, self._sent
            self._wake.set()
            self._passes.wait_for(lambda: self._finished >= target, timeout)
            return self._sent - sent_before

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered, within ``timeout``, and stop the flusher."""
        self._stop.set()
        self._wake.set()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._pending) + self._unsent_items

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            self._pass()
        self._pass()

    def _pass(self) -> None:
        with self._passes:
            self._started += 1
        try:
            self.before_send()
        except Exception as error:
            self.quiet.warning(
                "before_send", "selfmend client: measuring before a send failed", error
            )
        try:
            sent = self._send()
        except Exception as error:  # the flusher must outlive any one pass
            sent = 0
            self.quiet.warning("send", "selfmend client: a send failed unexpectedly", error)
        with self._passes:
            self._finished = self._started
            self._sent += sent
            self._passes.notify_all()

    def _send(self) -> int:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
        size = self.batch_size
        batches = [
            (json.dumps(items[start : start + size]), len(items[start : start + size]))
            for start in range(0, len(items), size)
        ]
        with self._lock:
            self._unsent.extend(batches)
            self._unsent_items += len(items)
        sent = 0
        while True:
            with self._lock:
                if not self._unsent:
                    return sent
                payload, count = self._unsent[0]
            try:
                self.buffer.push(payload)
            except Exception as error:
                self.quiet.warning(
                    "push", f"selfmend client: a push failed, {self.buffered} items held", error
                )
                return sent
            with self._lock:
                # add() may have dropped it meanwhile; drop it here only if it is still first.
                if self._unsent and self._unsent[0][0] is payload:
                    self._unsent.popleft()
                    self._unsent_items -= count
            sent += count
