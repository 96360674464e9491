"""Sessions a fault holds open on the shop's database, each closed (or found already ended by
selfmend) when the fault is undone."""

from __future__ import annotations

import psycopg


class Sessions:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.open: list[psycopg.Connection] = []

    def add(self, *statements: str, autocommit: bool = False) -> psycopg.Connection:
        connection = psycopg.connect(
            self.url, autocommit=autocommit, connect_timeout=5, application_name=self.name
        )
        self.open.append(connection)
        for statement in statements:
            connection.execute(statement)
        return connection

    def close(self) -> None:
        while self.open:
            connection = self.open.pop()
            try:
                connection.cancel()
                connection.close()
            except psycopg.Error:
                pass  # ended by selfmend's fix: nothing left to close
