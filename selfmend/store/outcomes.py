"""Verifications and the outcome counts per (pattern, action) they feed."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from selfmend.models import Verdict
from selfmend.store.tables import patterns, verifications


class OutcomeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def record(
        self,
        *,
        incident_id: int,
        execution_id: int,
        pattern: str,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        verdict: Verdict,
    ) -> None:
        """Store the verification and count it for (pattern, action), in one transaction."""
        now = time.time()
        fixed = verdict is Verdict.FIXED
        with self.engine.begin() as connection:
            connection.execute(
                insert(verifications).values(
                    incident_id=incident_id,
                    execution_id=execution_id,
                    before=before,
                    after=after,
                    verdict=str(verdict),
                    created_at=now,
                )
            )
            connection.execute(
                self._insert(patterns)
                .values(
                    name=pattern,
                    action=action,
                    successes=0,
                    failures=0,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["name", "action"])
            )
            counter = patterns.c.successes if fixed else patterns.c.failures
            connection.execute(
                update(patterns)
                .where(patterns.c.name == pattern, patterns.c.action == action)
                .values({counter: counter + 1, patterns.c.updated_at: now})
            )

    def verifications(self, incident_id: int) -> list[dict[str, Any]]:
        query = select(verifications).where(verifications.c.incident_id == incident_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by("id"))]

    def counts(self, pattern: str) -> dict[str, tuple[int, int]]:
        """Action → (fixed, not fixed) over every verification of ``pattern``."""
        query = select(patterns.c.action, patterns.c.successes, patterns.c.failures).where(
            patterns.c.name == pattern
        )
        with self.engine.connect() as connection:
            return {
                action: (fixed, not_fixed) for action, fixed, not_fixed in connection.execute(query)
            }

    def confidence(self) -> list[dict[str, Any]]:
        """Per (pattern, action): counts and the Beta(1 + s, 1 + f) posterior mean."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(patterns).order_by("name", "action")).all()
        return [
            {**row._mapping, "confidence": (1 + row.successes) / (2 + row.successes + row.failures)}
            for row in rows
        ]
