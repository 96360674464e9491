"""A runaway report: one query that joins the products with themselves and would run for
hours, holding a connection and a core of the database's two."""

from __future__ import annotations

import contextlib
import threading

import psycopg

from bench.lab.faults import FaultContext
from bench.lab.faults.sessions import Sessions

# Every pair of products: 2 x 10^10 comparisons, hours on one core. A self-join within each
# category was meant to, but finished in about 67 s here, before a pattern that waits a minute
# past the usual could see it run long.
REPORT = "SELECT count(*) FROM products a JOIN products b ON a.price < b.price"


class LongQuery:
    name = "long_query"
    broke = "database CPU (a self-join of products running for minutes)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.sessions = Sessions(context.env.shop_db_url, "lab-report")
        self._thread: threading.Thread | None = None

    def inject(self) -> dict:
        connection = self.sessions.add(
            "SET max_parallel_workers_per_gather = 0",  # one core, however long it runs
            f"SET statement_timeout = '{int(self.deadline + 60)}s'",  # bounded if the lab dies
            autocommit=True,
        )
        self._thread = threading.Thread(target=self._run, args=(connection,), daemon=True)
        self._thread.start()
        return {"query": REPORT}

    def _run(self, connection: psycopg.Connection) -> None:
        with contextlib.suppress(psycopg.Error):  # cancelled: by selfmend, or by the undo
            connection.execute(REPORT)

    def undo(self) -> None:
        self.sessions.close()
        if self._thread is not None:
            self._thread.join(10)
