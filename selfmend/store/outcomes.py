"""Verifications and the outcome counts per (pattern, action) they feed."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from selfmend.models import Verdict
from selfmend.store.engine import reads
from selfmend.store.tables import patterns, verifications
from selfmend.store.upsert import insert_or_update

_VERIFICATION = insert(verifications)


class OutcomeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._count = insert_or_update(
            patterns,
            ["name", "action"],
            {
                "successes": "old.successes + excluded.successes",
                "failures": "old.failures + excluded.failures",
                "updated_at": "excluded.updated_at",
            },
        )

    def record(
        self,
        connection: Connection,
        *,
        incident_id: int,
        execution_id: int,
        pattern: str,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        verdict: Verdict,
    ) -> None:
        """Store the verification and count it for (pattern, action), in the caller's
        transaction: the verdict that moves the incident on."""
        now = time.time()
        connection.execute(
            _VERIFICATION,
            {
                "incident_id": incident_id,
                "execution_id": execution_id,
                "before": before,
                "after": after,
                "verdict": str(verdict),
                "created_at": now,
            },
        )
        if verdict is Verdict.UNCREDITED:
            return  # no evidence either way of what the fix does for this pattern
        fixed = verdict is Verdict.FIXED
        connection.execute(
            self._count,
            {
                "name": pattern,
                "action": action,
                "successes": int(fixed),
                "failures": int(not fixed),
                "updated_at": now,
            },
        )

    def verifications(self, incident_id: int) -> list[dict[str, Any]]:
        query = select(verifications).where(verifications.c.incident_id == incident_id)
        with self.reads.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by("id"))]

    def counts(self, pattern: str) -> dict[str, tuple[int, int]]:
        """Action → (fixed, not fixed) over every verification of ``pattern``."""
        query = select(patterns.c.action, patterns.c.successes, patterns.c.failures).where(
            patterns.c.name == pattern
        )
        with self.reads.connect() as connection:
            return {
                action: (fixed, not_fixed) for action, fixed, not_fixed in connection.execute(query)
            }

    def confidence(self) -> list[dict[str, Any]]:
        """Per (pattern, action): counts and the Beta(1 + s, 1 + f) posterior mean."""
        with self.reads.connect() as connection:
            rows = connection.execute(select(patterns).order_by("name", "action")).all()
        return [
            {**row._mapping, "confidence": (1 + row.successes) / (2 + row.successes + row.failures)}
            for row in rows
        ]
