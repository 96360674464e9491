"""The databases PostgreSQL actions may act on: the ones selfmend monitors, by database name.

An action's ``database`` parameter names one of ``SELFMEND_MONITOR_POSTGRES_URLS`` (a pattern
passes the incident's ``{database}`` label); with a single monitored database it may be left
out. Nothing else is reachable, whatever the parameters say.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from selfmend.errors import ActionError
from selfmend.store.engine import DatabaseTimeouts, make_engine


class MonitoredDatabases:
    def __init__(self, urls: Iterable[str], timeouts: DatabaseTimeouts | None = None) -> None:
        self._urls = {make_url(url).database or "postgres": url for url in urls}
        self.timeouts = timeouts or DatabaseTimeouts()
        self._engines: dict[str, Engine] = {}

    @cached_property
    def names(self) -> list[str]:
        return sorted(self._urls)

    def name(self, action: str, database: str | None) -> str:
        """The monitored database meant, refusing any other."""
        if database is None:
            if len(self._urls) == 1:
                return self.names[0]
            known = ", ".join(self.names) or "none (set SELFMEND_MONITOR_POSTGRES_URLS)"
            raise ActionError(f"{action}: params.database: name one of the monitored: {known}")
        if database not in self._urls:
            known = ", ".join(self.names) or "none (set SELFMEND_MONITOR_POSTGRES_URLS)"
            raise ActionError(
                f"{action}: params.database: {database!r} is not a monitored database ({known})"
            )
        return database

    def engine(self, database: str) -> Engine:
        if database not in self._engines:
            self._engines[database] = make_engine(self._urls[database], self.timeouts)
        return self._engines[database]
