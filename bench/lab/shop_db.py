"""The shop's PostgreSQL: its tables, seeded big enough that a lost index hurts, and the small
connection pool whose size is a live setting (``db.pool_size``) selfmend may move.

A pool of its own rather than SQLAlchemy's, because its size must follow the live setting while
the service runs: a smaller size closes connections as they come back, a larger one opens more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

PRODUCTS = 200_000
HOT_PRODUCTS = 50  # the ones orders are placed on, so their stock rows are contended
SKU_INDEX = "products_sku_idx"
STATEMENT_TIMEOUT_MS = 5_000

SCHEMA = f"""
CREATE TABLE products (
    id integer PRIMARY KEY,
    sku text NOT NULL,
    name text NOT NULL,
    category integer NOT NULL,
    price numeric(10, 2) NOT NULL,
    description text NOT NULL
);
INSERT INTO products
SELECT i, 'SKU-' || lpad(i::text, 7, '0'), 'product ' || i, i % 40, (i % 997) / 10.0 + 1,
       repeat(md5(i::text), 6)
FROM generate_series(1, {PRODUCTS}) AS i;
CREATE INDEX {SKU_INDEX} ON products (sku);
CREATE TABLE stock (product_id integer PRIMARY KEY, quantity integer NOT NULL);
INSERT INTO stock SELECT i, 1000000 FROM generate_series(1, {PRODUCTS}) AS i;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    product_id integer NOT NULL,
    quantity integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_product_id_idx ON orders (product_id);
ANALYZE;
"""


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA)


class Pool:
    """At most ``size()`` connections; a caller waits for one, and the wait is reported."""

    def __init__(self, url: str, size: Callable[[], int], on_wait: Callable[[float], None]) -> None:
        self.url = url
        self.size = size
        self.on_wait = on_wait
        self._idle: list[psycopg.Connection] = []
        self._open = 0
        self._changed = threading.Condition()

    @contextmanager
    def connection(self, timeout: float = 10.0) -> Iterator[psycopg.Connection]:
        started = time.monotonic()
        connection = self._take(started + timeout)
        self.on_wait((time.monotonic() - started) * 1000)
        try:
            yield connection
        except BaseException:
            if connection.broken:  # a terminated session: open a new one next time
                self._discard(connection)
            else:
                self._give_back(connection)
            raise
        self._give_back(connection)

    def _take(self, deadline: float) -> psycopg.Connection:
        with self._changed:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._open < self.size():
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no pooled database connection within the timeout")
                self._changed.wait(min(left, 1.0))  # the size may have grown meanwhile
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=5,
                application_name="shop",
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            )
        except BaseException:
            self._discard(None)
            raise

    def _give_back(self, connection: psycopg.Connection) -> None:
        with self._changed:
            if self._open > self.size() or connection.closed:
                self._open -= 1
                connection.close()
            else:
                self._idle.append(connection)
            self._changed.notify()

    def _discard(self, connection: psycopg.Connection | None) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify()
        if connection is not None:
            connection.close()
