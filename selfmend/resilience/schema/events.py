"""Schema events in this process: code that keeps something derived from a schema (the resilient
writer's schema cache and healing rules) registers a listener and hears of each new version.

Other processes hear of it through the live setting ``schema.version.<database>`` (the new
version's id), which the watch publishes after the listeners here have run::

    from selfmend.resilience.schema import schema_events

    @schema_events.connect
    def forget_schema(event):
        if event.critical:
            cache.pop(event.database, None)

A listener that raises is logged and never keeps the others, or the watch, from running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from selfmend.errors import is_interruption
from selfmend.models import Severity
from selfmend.resilience.schema.diff import SchemaChange, highest

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SchemaVersionEvent:
    """A new version of ``database``'s schema was recorded; ``previous_id`` is None for the
    first version (the baseline), whose ``changes`` are empty."""

    database: str
    version_id: int
    number: int
    digest: str
    previous_id: int | None
    changes: tuple[SchemaChange, ...]

    @property
    def severity(self) -> Severity | None:
        return highest(self.changes)

    @property
    def critical(self) -> bool:
        return self.severity is Severity.CRITICAL


SchemaListener = Callable[[SchemaVersionEvent], object]


class SchemaEvents:
    """An ordered set of listeners, called one after another on the watch's thread."""

    def __init__(self) -> None:
        self._listeners: list[SchemaListener] = []

    def connect(self, listener: SchemaListener) -> SchemaListener:
        """Register ``listener`` (once, however often it is connected); usable as a decorator."""
        if listener not in self._listeners:
            self._listeners.append(listener)
        return listener

    def disconnect(self, listener: SchemaListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fire(self, event: SchemaVersionEvent) -> int:
        """Call every listener; the number that failed (each one logged with the event)."""
        failed = 0
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as error:
                if is_interruption(error):
                    raise
                failed += 1
                log.exception(
                    "schema.listener_failed",
                    listener=getattr(listener, "__qualname__", repr(listener)),
                    database=event.database,
                    version_id=event.version_id,
                )
        return failed


# The registry the watch fires by default: import it to listen in this process.
schema_events = SchemaEvents()
