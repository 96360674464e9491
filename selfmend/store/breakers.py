"""Circuit breaker transitions in the store: one row per transition, whichever process made it
and whichever storage holds the breaker's state, for the weekly optimizer to learn from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select

from selfmend.store.tables import breaker_events


class BreakerEventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, row: dict[str, Any]) -> None:
        """Store one transition (``breaker``, ``from_state``, ``to_state``, ``version``,
        ``reason``, ``process``, ``evidence``, ``created_at``)."""
        with self.engine.begin() as connection:
            connection.execute(insert(breaker_events).values(**row))

    def recent(self, breaker: str | None = None, since: float = 0.0) -> list[dict[str, Any]]:
        """Transitions since ``since``, of one breaker or of all, in the order each breaker
        made them (its version), oldest first."""
        query = select(breaker_events).where(breaker_events.c.created_at >= since)
        if breaker is not None:
            query = query.where(breaker_events.c.breaker == breaker)
        with self.engine.connect() as connection:
            order = (breaker_events.c.breaker, breaker_events.c.version)
            rows = connection.execute(query.order_by(*order)).mappings().all()
        return [dict(row) for row in rows]
