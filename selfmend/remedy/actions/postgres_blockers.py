"""pg_end_blockers: the fix for lock contention, ending the sessions at the head of the queue.

Sessions waiting on locks queue behind one transaction that holds them: a transaction left idle
by its application, or one running a long statement. The plan reads the monitored database's
sessions waiting on a ``Lock`` and follows ``pg_blocking_pids`` from each to the root blockers:
the sessions that block and are not themselves waiting on a lock (a waiter that blocks others
is freed with its root). Those whose transaction has been open over ``transaction_seconds`` are
chosen: the blocker's age, not the waiters', because a statement timeout ends each waiter after
seconds while the transaction holding the lock ages on, and it is the age the
``postgres.oldest_blocker_seconds`` series reports, so a pattern on that series and this bound
see the same session. The plan names each by pid and backend start, with its state, what it
runs (or last ran) and how many waiting sessions queue behind it now, oldest transaction first,
at most ``max_sessions``.

Apply signals each root blocker that is still the same backend and still blocks someone: one
idle in its transaction is terminated (``pg_terminate_backend``: the transaction rolls back and
its locks go), an active one has its query cancelled (``pg_cancel_backend``: the statement fails,
its transaction aborts and its locks go, the session stays). A second apply finds nothing left.

When no transaction that old blocks anyone the plan refuses, so the next candidate or a person
takes the incident; so it does when the root blockers are neither active nor in a transaction
(a session-level advisory lock held by an idle session), which no cancel frees. Only client
sessions of the monitored database, never selfmend's own. Neither signal can be undone: not
reversible, medium risk.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.base import Plan, parse_params

# Every lock waiter of the database, then the blocking chains from each (a waiter blocked by a
# waiter leads on to that one's blockers); the roots are the blockers not waiting on a lock,
# chosen when their transaction is over the bound (or they hold a lock outside any, so the plan
# can say why nothing frees it), each counting every waiter queued behind it.
_ROOTS = text("""
    WITH RECURSIVE waiting AS (
        SELECT w.pid, pg_blocking_pids(w.pid) AS blockers
        FROM pg_stat_activity w
        WHERE w.datname = current_database() AND w.backend_type = 'client backend'
          AND w.wait_event_type = 'Lock'
    ), chain(waiter, blocker) AS (
        SELECT w.pid, b.pid FROM waiting w CROSS JOIN unnest(w.blockers) AS b(pid)
        UNION
        SELECT c.waiter, b.pid
        FROM chain c JOIN waiting w ON w.pid = c.blocker CROSS JOIN unnest(w.blockers) AS b(pid)
    )
    SELECT a.pid, extract(epoch FROM a.backend_start)::float8 AS started,
           coalesce(a.state, '') AS state, coalesce(a.application_name, '') AS application,
           left(a.query, 200) AS query,
           coalesce(extract(epoch FROM clock_timestamp() - a.xact_start), 0)::float8
               AS transaction_seconds,
           count(DISTINCT c.waiter)::int AS blocks
    FROM chain c JOIN pg_stat_activity a ON a.pid = c.blocker
    WHERE a.datname = current_database() AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid() AND a.wait_event_type IS DISTINCT FROM 'Lock'
      AND (a.xact_start IS NULL
           OR clock_timestamp() - a.xact_start > make_interval(secs => :transaction_seconds))
    GROUP BY a.pid, a.backend_start, a.state, a.application_name, a.query, a.xact_start
    ORDER BY a.xact_start NULLS LAST, a.backend_start
""")
# Only the backends the plan named (pid and start time), still blocking a waiter; idle in a
# transaction: terminated, active: its query cancelled. CASE runs only the branch that matches.
_SIGNAL = text("""
    SELECT a.pid, a.state = 'active' AS cancel,
           CASE WHEN a.state = 'active' THEN pg_cancel_backend(a.pid)
                ELSE pg_terminate_backend(a.pid) END AS done
    FROM pg_stat_activity a
    JOIN unnest(CAST(:pids AS int[]), CAST(:starts AS float8[])) AS planned(pid, started)
      ON a.pid = planned.pid AND abs(extract(epoch FROM a.backend_start) - planned.started) < 1e-3
    WHERE a.datname = current_database() AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid()
      AND (a.state = 'active' OR a.state LIKE 'idle in transaction%')
      AND EXISTS (
          SELECT 1 FROM pg_stat_activity w
          WHERE w.wait_event_type = 'Lock' AND a.pid = ANY(pg_blocking_pids(w.pid))
      )
""")


class BlockerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str | None = Field(None, description="A monitored database; its only one if unset.")
    transaction_seconds: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="Root blockers whose transaction has been open over this long.",
    )
    max_sessions: int = Field(1, ge=1, le=5, description="Root blockers one apply may end.")


def _actionable(state: str) -> bool:
    return state == "active" or state.startswith("idle in transaction")


class PgEndBlockers:
    name = "pg_end_blockers"
    params_model = BlockerParams
    risk = Risk.MEDIUM
    reversible = False

    def __init__(self, databases: MonitoredDatabases) -> None:
        self.databases = databases

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(BlockerParams, self.name, params)
        database = self.databases.name(self.name, parsed.database)
        with self.databases.engine(database).connect() as connection:
            roots = [
                dict(row)
                for row in connection.execute(
                    _ROOTS, {"transaction_seconds": parsed.transaction_seconds}
                ).mappings()
            ]
        if not roots:
            raise ActionError(
                f"{self.name}: no session of {database} in a transaction open over "
                f"{parsed.transaction_seconds:g} s blocks another"
            )
        sessions = [r for r in roots if _actionable(r["state"])][: parsed.max_sessions]
        if not sessions:
            raise ActionError(
                f"{self.name}: the sessions that block others on {database} are neither active "
                f"nor in a transaction (a session-level lock), which no cancel frees: "
                f"{describe(roots)}"
            )
        return Plan(
            self.name,
            database,
            {**parsed.model_dump(), "database": database, "sessions": sessions},
            {},
            f"end the sessions in a transaction open over {parsed.transaction_seconds:g} s that "
            f"block others on {database} (terminate if idle in a transaction, else cancel the "
            f"query): {describe(sessions)}",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        sessions = plan.params["sessions"]  # never empty: a plan without a blocker is refused
        with self.databases.engine(plan.target).begin() as connection:
            signalled = connection.execute(
                _SIGNAL,
                {
                    "pids": [s["pid"] for s in sessions],
                    "starts": [s["started"] for s in sessions],
                },
            ).all()
        ended = sorted(pid for pid, cancel, done in signalled if done and not cancel)
        cancelled = sorted(pid for pid, cancel, done in signalled if done and cancel)
        return {"changed": bool(ended or cancelled), "ended": ended, "cancelled": cancelled}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}


def describe(sessions: list[dict[str, Any]]) -> str:
    """Who blocks, as the approver and the audit log read it."""
    return "; ".join(
        f"pid {s['pid']} ({s['state'] or 'unknown state'}, "
        f"{s['application'] or 'no application_name'}, "
        f"transaction {s['transaction_seconds']:.0f} s, blocks {s['blocks']}): {s['query']!r}"
        for s in sessions
    )
