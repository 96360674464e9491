"""pg_cancel_queries and pg_end_idle_transactions: stop the sessions that hold a database up.

- ``pg_cancel_queries`` cancels queries running longer than ``older_than_seconds``
  (``pg_cancel_backend``: the query fails, the session stays);
- ``pg_end_idle_transactions`` terminates sessions that have sat inside an open transaction
  longer than that (``pg_terminate_backend``: the transaction rolls back, the session closes).

Only client sessions of the monitored database, never selfmend's own, at most ``max_sessions``
per apply, oldest first. The plan names each session by pid and start time, and apply signals
only those still in the state the plan saw, so a pid reused since is never touched and a second
apply finds nothing left. A cancelled query cannot be run again for its caller: neither action
is reversible, so both are medium risk and their rollback changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from selfmend.models import Risk
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.base import Plan, parse_params

# The session selection both actions share; {state} and {since} differ.
_SESSIONS = """
    SELECT pid, extract(epoch FROM backend_start)::float8 AS started,
           extract(epoch FROM clock_timestamp() - {since})::float8 AS age,
           coalesce(application_name, '') AS application, left(query, 200) AS query
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend' AND {state}
      AND clock_timestamp() - {since} > make_interval(secs => :older_than)
"""
_SIGNAL = """
    SELECT a.pid, {function}(a.pid) FROM pg_stat_activity a
    JOIN unnest(CAST(:pids AS int[]), CAST(:starts AS float8[])) AS planned(pid, started)
      ON a.pid = planned.pid AND abs(extract(epoch FROM a.backend_start) - planned.started) < 1e-3
    WHERE {state} AND clock_timestamp() - {since} > make_interval(secs => :older_than)
"""


class SessionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str | None = Field(None, description="A monitored database; its only one if unset.")
    older_than_seconds: float = Field(gt=0, allow_inf_nan=False)
    max_sessions: int = Field(5, ge=1, le=20, description="Sessions one apply may end at most.")
    application_name: str | None = Field(None, description="Only sessions of this application.")


class _EndSessions:
    params_model = SessionParams
    risk = Risk.MEDIUM
    reversible = False
    name: str
    verb: str
    function: str
    state: str
    since: str

    def __init__(self, databases: MonitoredDatabases) -> None:
        self.databases = databases

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(SessionParams, self.name, params)
        database = self.databases.name(self.name, parsed.database)
        sessions = self._sessions(database, parsed)
        listed = ", ".join(f"pid {s['pid']} ({s['age']:.0f} s)" for s in sessions) or "none now"
        return Plan(
            self.name,
            database,
            {**parsed.model_dump(), "database": database, "sessions": sessions},
            {},
            f"{self.verb} sessions over {parsed.older_than_seconds:g} s on {database}: {listed}",
        )

    def _sessions(self, database: str, params: SessionParams) -> list[dict[str, Any]]:
        query = _SESSIONS.format(state=self.state, since=self.since)
        if params.application_name is not None:
            query += " AND application_name = :application"
        query += " ORDER BY age DESC LIMIT :limit"
        with self.databases.engine(database).connect() as connection:
            rows = connection.execute(
                text(query),
                {
                    "older_than": params.older_than_seconds,
                    "application": params.application_name,
                    "limit": params.max_sessions,
                },
            ).mappings()
            return [dict(row) for row in rows]

    def apply(self, plan: Plan) -> dict[str, Any]:
        sessions = plan.params["sessions"]
        if not sessions:
            return {"changed": False, "ended": []}
        query = _SIGNAL.format(function=self.function, state=self.state, since=self.since)
        with self.databases.engine(plan.target).begin() as connection:
            signalled = connection.execute(
                text(query),
                {
                    "pids": [s["pid"] for s in sessions],
                    "starts": [s["started"] for s in sessions],
                    "older_than": plan.params["older_than_seconds"],
                },
            ).all()
        ended = sorted(pid for pid, done in signalled if done)
        return {"changed": bool(ended), "ended": ended}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}


class PgCancelQueries(_EndSessions):
    name = "pg_cancel_queries"
    verb = "cancel the queries of"
    function = "pg_cancel_backend"
    state = "state = 'active'"
    since = "query_start"


class PgEndIdleTransactions(_EndSessions):
    name = "pg_end_idle_transactions"
    verb = "terminate"
    function = "pg_terminate_backend"
    state = "state LIKE 'idle in transaction%'"
    since = "state_change"
