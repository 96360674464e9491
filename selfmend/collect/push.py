"""The push path: the application's client buffers samples and sends them here in batches.

A buffer holds JSON batches between the client and the collect stage: a Redis list in
production, a table of the store in the embedded default. ``drain`` hands a batch to a handler
and forgets it only when the handler returned; a handler that raises leaves it buffered. The
handler stores a batch in one transaction with its digest, once: a batch delivered again is
recognised and skipped, so every pushed sample is stored exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy import Connection, Engine, delete, insert, select

from selfmend.config import Settings
from selfmend.models import Rejection, parse_batch
from selfmend.store import Store
from selfmend.store.tables import push_queue

log = structlog.get_logger(__name__)

REDIS_KEY = "selfmend:push"
POP_HANDLED = Path(__file__).with_name("pop_handled.lua")

Handler = Callable[[list[str], Connection | None], None]


class PushBuffer(Protocol):
    def push(self, payload: str) -> None:
        """Append one JSON batch."""

    def drain(self, limit: int, handler: Handler) -> int:
        """Pass up to ``limit`` batches to ``handler``; return how many were handled."""


class StorePushBuffer:
    """The embedded buffer: rows of ``push_queue``, drained in the transaction that stores them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._skip_locked = engine.dialect.name == "postgresql"

    def push(self, payload: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(push_queue).values(payload=payload, created_at=time.time()))

    def drain(self, limit: int, handler: Handler) -> int:
        oldest = select(push_queue.c.id).order_by(push_queue.c.id).limit(limit)
        if self._skip_locked:
            oldest = oldest.with_for_update(skip_locked=True)
        statement = (
            delete(push_queue)
            .where(push_queue.c.id.in_(oldest.scalar_subquery()))
            .returning(push_queue.c.id, push_queue.c.payload)
        )
        with self.engine.begin() as connection:
            rows = sorted(connection.execute(statement).all())
            if rows:
                handler([payload for _, payload in rows], connection)
        return len(rows)


class RedisPushBuffer:
    """The production buffer: a Redis list. A drain reads batches from its head, stores them,
    and only then removes them (``pop_handled.lua``): a drain that dies midway, or whose store
    fails, leaves them there for the next, and the store's batch digests keep a batch read
    twice from being stored twice."""

    def __init__(self, client: Any, key: str = REDIS_KEY) -> None:
        self.client = client
        self.key = key
        self._pop_handled = client.register_script(POP_HANDLED.read_text())

    def push(self, payload: str) -> None:
        self.client.rpush(self.key, payload)

    def drain(self, limit: int, handler: Handler) -> int:
        payloads = [
            p.decode() if isinstance(p, bytes) else p
            for p in self.client.lrange(self.key, 0, limit - 1)
        ]
        if not payloads:
            return 0
        handler(payloads, None)
        self._pop_handled(keys=[self.key], args=payloads)
        return len(payloads)


def push_buffer(settings: Settings, store: Store) -> PushBuffer:
    """Redis when ``SELFMEND_REDIS_URL`` is set, else the store's table."""
    if settings.redis_url:
        import redis

        return RedisPushBuffer(redis.Redis.from_url(settings.redis_url, socket_timeout=10))
    return StorePushBuffer(store.engine)


@dataclass
class PushReport:
    """What one drain stored and what it refused, with the field to fix."""

    samples: int = 0
    logs: int = 0
    rejected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "logs": self.logs, "rejected": self.rejected}


class PushCollector:
    """Drains the push buffer into the store; bad items are refused one by one, never the batch."""

    name = "push"

    def __init__(
        self, buffer: PushBuffer, store: Store, *, max_skew: float, batches_per_run: int = 1000
    ) -> None:
        self.buffer = buffer
        self.store = store
        self.max_skew = max_skew
        self.batches_per_run = batches_per_run

    def drain(self) -> PushReport:
        report = PushReport()

        def store_batches(payloads: list[str], connection: Connection | None) -> None:
            if connection is None:
                with self.store.engine.begin() as own:
                    return store_batches(payloads, own)
            payloads = self.store.samples.first_seen(payloads, connection)
            items, refused = _decode(payloads)
            parsed = parse_batch(items, max_skew=self.max_skew)
            self.store.samples.insert(parsed.samples, connection)
            self.store.samples.insert_logs(parsed.logs, connection)
            self.store.settings_read.record(
                ((read.keys, read.ts) for read in parsed.settings_read), connection
            )
            report.samples += len(parsed.samples)
            report.logs += len(parsed.logs)
            report.rejected += [str(r) for r in refused + parsed.rejected]

        while self.buffer.drain(self.batches_per_run, store_batches) == self.batches_per_run:
            pass
        if report.rejected:
            log.warning("push.rejected", count=len(report.rejected), first=report.rejected[:5])
        return report


def _decode(payloads: Sequence[str]) -> tuple[list[Any], list[Rejection]]:
    """Flatten JSON batches into items; a payload that is not a JSON list is refused whole."""
    items: list[Any] = []
    refused: list[Rejection] = []
    for number, payload in enumerate(payloads):
        try:
            batch = json.loads(payload)
        except json.JSONDecodeError as error:
            refused.append(Rejection(number, "payload", f"is not JSON: {error.msg}"))
            continue
        if not isinstance(batch, list):
            refused.append(Rejection(number, "payload", "must be a JSON list of items"))
            continue
        items.extend(batch)
    return items, refused
