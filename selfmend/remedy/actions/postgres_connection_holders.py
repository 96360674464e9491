"""pg_connection_holders: when connections run short, find what holds them before resizing.

Shrinking the application's pool when the server nears ``max_connections`` treats every cause
alike, and is wrong for the commonest one: sessions left idle inside an open transaction, each
holding a connection (and its locks) that no pool resize gives back. The plan reads who holds
the server's connections (``pg_stat_activity`` grouped by database, application, state and
client address, with the oldest state change of each group) and acts on that cause alone:
sessions of the monitored database idle in a transaction longer than
``idle_in_transaction_seconds`` are terminated, oldest first, at most ``max_sessions``, as
``pg_end_idle_transactions`` does it (only sessions still in the state the plan saw).

When no session idles in a transaction that long, the cause is something else (more workers,
a slow database, a leak of idle connections) and the plan refuses, naming who holds the
connections: the next candidate (a pool resize, if the application reads its pool size) or a
person takes it from there with that breakdown. A terminated session cannot be brought back, so
the action is not reversible and is medium risk, like the session actions.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.actions.postgres_sessions import PgEndIdleTransactions
from selfmend.remedy.base import Plan, parse_params

# Server-wide: max_connections is the server's, and another database's sessions count against
# it too. Ending sessions stays within the monitored database.
_HOLDERS = text("""
    SELECT coalesce(datname, '') AS database, coalesce(application_name, '') AS application,
           coalesce(state, '') AS state, coalesce(host(client_addr), 'local') AS client,
           count(*)::int AS sessions,
           coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)::float8
               AS oldest_seconds
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    GROUP BY 1, 2, 3, 4
    ORDER BY sessions DESC, oldest_seconds DESC
    LIMIT :groups
""")
GROUPS_SHOWN = 20


class HolderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str | None = Field(None, description="A monitored database; its only one if unset.")
    idle_in_transaction_seconds: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Idle in a transaction longer: the cause."
    )
    max_sessions: int = Field(5, ge=1, le=20, description="Sessions one apply may end at most.")


class PgConnectionHolders:
    name = "pg_connection_holders"
    params_model = HolderParams
    risk = Risk.MEDIUM
    reversible = False

    def __init__(self, databases: MonitoredDatabases) -> None:
        self.databases = databases
        self.idle = PgEndIdleTransactions(databases)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(HolderParams, self.name, params)
        database = self.databases.name(self.name, parsed.database)
        holders = self._holders(database)
        idle = self.idle.plan(
            {
                "database": database,
                "older_than_seconds": parsed.idle_in_transaction_seconds,
                "max_sessions": parsed.max_sessions,
            }
        )
        sessions = idle.params["sessions"]
        if not sessions:
            raise ActionError(
                f"{self.name}: no session of {database} has idled in a transaction over "
                f"{parsed.idle_in_transaction_seconds:g} s, so ending sessions would not free "
                f"the connections; they are held by: {describe(holders)}"
            )
        listed = ", ".join(f"pid {s['pid']} ({s['age']:.0f} s)" for s in sessions)
        return Plan(
            self.name,
            database,
            {**idle.params, "holders": holders},
            {},
            f"terminate the sessions idle in a transaction over "
            f"{parsed.idle_in_transaction_seconds:g} s on {database}: {listed}; "
            f"connections are held by: {describe(holders)}",
        )

    def _holders(self, database: str) -> list[dict[str, Any]]:
        with self.databases.engine(database).connect() as connection:
            rows = connection.execute(_HOLDERS, {"groups": GROUPS_SHOWN}).mappings()
            return [dict(row) for row in rows]

    def apply(self, plan: Plan) -> dict[str, Any]:
        return self.idle.apply(plan)

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}


def describe(holders: list[dict[str, Any]]) -> str:
    """One line per group, most sessions first: what a person reads in the refusal."""
    if not holders:
        return "no client session"
    return "; ".join(
        f"{h['sessions']} {h['state'] or 'unknown state'} of "
        f"{h['application'] or 'no application_name'} from {h['client']} on {h['database']} "
        f"(oldest {h['oldest_seconds']:.0f} s)"
        for h in holders
    )
