"""The databases the schema watch reads, each named by its database name (``shop`` for
``postgresql://…/shop``, the file's stem for SQLite), as the PostgreSQL actions name them.

The name is what events, live settings (``schema.version.<name>``) and incidents carry, so two
URLs with one name are refused at the start rather than overwriting each other's versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from selfmend.errors import ConfigurationError, DatabaseUnreachable
from selfmend.store.engine import DatabaseTimeouts, normalize_url


def database_name(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "memory").stem
    return parsed.database or "postgres"


@dataclass(frozen=True)
class WatchedDatabase:
    name: str
    url: str
    timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)

    @property
    def shown_url(self) -> str:
        """The URL with its password masked, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @cached_property
    def engine(self) -> Engine:
        """A small pool with the timeouts: a watch must not hang on a database that is down,
        and never creates a SQLite file that is missing."""
        url = make_url(normalize_url(self.url))
        options = self.timeouts.connect_args(normalize_url(self.url))
        if url.get_backend_name() == "sqlite":
            read_only = {**url.query, "mode": "ro", "uri": "true"}
            file = url.set(database=f"file:{url.database}", query=read_only)
            return create_engine(file, connect_args=options)
        return create_engine(url, pool_size=1, max_overflow=1, connect_args=options)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection, or ``DatabaseUnreachable`` naming this database and why."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise DatabaseUnreachable(
                f"schema watch: database {self.name!r} ({self.shown_url}) cannot be read: {reason}"
            ) from error


def watched_databases(
    urls: Iterable[str], timeouts: DatabaseTimeouts | None = None
) -> tuple[WatchedDatabase, ...]:
    """The databases of ``SELFMEND_SCHEMA_WATCH_URLS``, refusing two with one name."""
    databases: dict[str, WatchedDatabase] = {}
    for url in urls:
        watched = WatchedDatabase(database_name(url), url, timeouts or DatabaseTimeouts())
        if watched.name in databases:
            raise ConfigurationError(
                f"schema_watch_urls: {databases[watched.name].shown_url} and {watched.shown_url} "
                f"are both named {watched.name!r}; watch each database name once"
            )
        databases[watched.name] = watched
    return tuple(databases.values())
