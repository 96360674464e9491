"""Incidents and audit-log rows written straight into a store, for the retention tests."""

from __future__ import annotations

from sqlalchemy import insert

from selfmend.store import Store
from selfmend.store.tables import executions, incidents

NOW = 1_800_000_000.0  # a whole hour, so the expected buckets are easy to reason about


def incident(store: Store, closed_at: float | None, target: str = "t") -> int:
    with store.engine.begin() as connection:
        return connection.execute(
            insert(incidents).values(
                pattern="p",
                target=target,
                severity="low",
                status="resolved" if closed_at else "open",
                evidence={},
                reopen_count=0,
                opened_at=(closed_at or NOW) - 100,
                updated_at=closed_at or NOW,
                closed_at=closed_at,
            )
        ).inserted_primary_key[0]


def step(store: Store, incident_id: int, state: str, at: float, action: str = "cache_warm") -> int:
    with store.engine.begin() as connection:
        return connection.execute(
            insert(executions).values(
                incident_id=incident_id,
                action=action,
                target="t",
                state=state,
                risk="low",
                params={"keys": 3},
                actor="selfmend",
                reason=f"{state} at {at}",
                created_at=at,
            )
        ).inserted_primary_key[0]
