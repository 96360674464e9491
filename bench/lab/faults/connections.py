"""Connections held open until the server is near ``max_connections``. The machine's PostgreSQL
is shared with other runs, so a few slots are always left free, at most ``CAP`` are taken, and
every one is closed at the end (and by the server, if the lab dies)."""

from __future__ import annotations

import psycopg

from bench.lab.faults import FaultContext
from bench.lab.faults.sessions import Sessions

TARGET_UTILIZATION = 0.92
SPARE = 6  # slots left for everyone else, beyond the superuser reserve
CAP = 70


class ConnectionExhaustion:
    name = "connection_exhaustion"
    broke = "database connection headroom (server near max_connections)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.url = context.env.shop_db_url
        self.sessions = Sessions(self.url, "lab-hog")

    def inject(self) -> dict:
        with psycopg.connect(self.url, autocommit=True) as connection:
            limit = int(connection.execute("SHOW max_connections").fetchone()[0])
            reserved = int(connection.execute("SHOW superuser_reserved_connections").fetchone()[0])
            used = connection.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]
        wanted = min(int(limit * TARGET_UTILIZATION), limit - reserved - SPARE) - used
        held = 0
        for _ in range(max(0, min(wanted, CAP))):
            try:
                self.sessions.add("SELECT 1", autocommit=True)
            except psycopg.OperationalError:
                break  # someone else took the last slots: hold what we have
            held += 1
        return {"held": held, "max_connections": limit, "in_use_before": used}

    def undo(self) -> None:
        self.sessions.close()
