"""A client session whose statement runs on a thread while a test acts on it (cancels it, ends
it, or waits behind it): the PostgreSQL action tests' long query and lock holder."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg


class SessionOnThread:
    """Connects as ``application_name``, runs ``before`` (statement, params) at once, then
    ``statement`` on a thread; ``error`` is how it ended (None while it runs or if it finished)."""

    def __init__(
        self,
        url: str,
        statement: str,
        params: Sequence[Any] = (),
        *,
        application_name: str,
        autocommit: bool = True,
        before: Sequence[tuple[str, Sequence[Any]]] = (),
    ) -> None:
        self.connection = psycopg.connect(
            url, autocommit=autocommit, application_name=application_name
        )
        self.pid = self.connection.info.backend_pid
        for setup, setup_params in before:
            self.connection.execute(setup, setup_params)
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(statement, params), daemon=True)
        self.thread.start()

    def _run(self, statement: str, params: Sequence[Any]) -> None:
        try:
            self.connection.execute(statement, params)
        except psycopg.Error as error:
            self.error = error

    def close(self) -> None:
        self.connection.cancel()
        self.thread.join(10)
        self.connection.close()
