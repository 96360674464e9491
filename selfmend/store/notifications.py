"""The notifications outbox: messages to a person, kept until a delivery succeeds.

A message is written in the transaction that changes the incident it is about, so an escalation
is never made without its message, nor announced without having happened. The notify stage
delivers what is due and, when the receiver fails, tries again later with a doubling delay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from selfmend.store.engine import reads
from selfmend.store.tables import notifications


@dataclass(frozen=True)
class Notification:
    id: int
    incident_id: int
    kind: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    next_attempt_at: float
    sent_at: float | None
    last_error: str | None


class NotificationStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)

    def enqueue(
        self, connection: Connection, incident_id: int, kind: str, payload: dict[str, Any]
    ) -> None:
        """Add a message inside the caller's transaction."""
        now = time.time()
        connection.execute(
            insert(notifications).values(
                incident_id=incident_id,
                kind=kind,
                payload=payload,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )

    def due(self, now: float, limit: int = 100) -> list[Notification]:
        query = (
            select(notifications)
            .where(notifications.c.sent_at.is_(None), notifications.c.next_attempt_at <= now)
            .order_by(notifications.c.id)
            .limit(limit)
        )
        with self.reads.connect() as connection:
            return [Notification(**row._mapping) for row in connection.execute(query)]

    def unsent_count(self) -> int:
        query = select(func.count()).where(notifications.c.sent_at.is_(None))
        with self.reads.connect() as connection:
            return connection.execute(query).scalar_one()

    def for_incident(self, incident_id: int) -> list[Notification]:
        query = select(notifications).where(notifications.c.incident_id == incident_id)
        with self.reads.connect() as connection:
            return [
                Notification(**row._mapping) for row in connection.execute(query.order_by("id"))
            ]

    def sent(self, notification_id: int) -> None:
        self._update(notification_id, sent_at=time.time(), last_error=None)

    def failed(self, notification: Notification, error: str, retry_at: float) -> None:
        self._update(
            notification.id,
            attempts=notification.attempts + 1,
            next_attempt_at=retry_at,
            last_error=error,
        )

    def _update(self, notification_id: int, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(notifications).where(notifications.c.id == notification_id).values(**values)
            )
