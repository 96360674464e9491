"""The audit log past its retention: moved to ``audit_archive``, never deleted unrecorded.

Two kinds of rows leave the hot tables, each in a transaction that writes what it removes:
- every executions and verifications row of an incident closed longer ago than the archive age,
  as the JSON of the row it was (the decisions stay readable: ``records(incident_id)``);
- the repeated ``skipped`` rows of one (incident, action) — a remediation held back by a cap or
  a cooldown logs one on every retry — older than the event age: the first and the latest are
  kept in the log, those between become one summary (how many, when, why).

Only rows the /metrics summary has already counted are moved (``counted_until``), so counters
never drop.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, exists, func, insert, select
from sqlalchemy.orm import aliased

from selfmend.models import ExecutionState
from selfmend.store.engine import reads
from selfmend.store.tables import audit_archive, executions, incidents, verifications

SKIPPED = str(ExecutionState.SKIPPED)
REPEATS = "skipped_repeats"
_REASONS_KEPT = 5  # the commonest reasons a summary of repeats names


class AuditArchive:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)

    def archive_batch(
        self, closed_before: float, counted_until: int, incident_limit: int, now: float
    ) -> int:
        """Move the audit rows of up to ``incident_limit`` incidents closed before
        ``closed_before``; returns how many rows moved (0: none is left to move)."""
        chosen = (
            select(executions.c.incident_id)
            .join(incidents, incidents.c.id == executions.c.incident_id)
            .where(incidents.c.closed_at < closed_before)
            .group_by(executions.c.incident_id)
            .having(func.max(executions.c.id) <= counted_until)
            .order_by(executions.c.incident_id)
            .limit(incident_limit)
        )
        with self.engine.begin() as connection:
            ids = list(connection.execute(chosen).scalars())
            if not ids:
                return 0
            # Verifications first: they refer to the executions rows. An execution whose
            # verification was written after that read stays, with it, for the next batch.
            moved = self._move(connection, verifications, verifications.c.incident_id.in_(ids), now)
            unverified = ~exists().where(verifications.c.execution_id == executions.c.id)
            chosen_executions = executions.c.incident_id.in_(ids) & unverified
            return moved + self._move(connection, executions, chosen_executions, now)

    def _move(self, connection: Connection, table: Table, where: Any, now: float) -> int:
        """Archive the rows of ``table`` that match ``where`` and delete those rows, by their
        ids: at read committed a row committed after the read matches the condition too, and
        must not be deleted unarchived."""
        rows = [dict(row._mapping) for row in connection.execute(select(table).where(where))]
        if not rows:
            return 0
        connection.execute(
            insert(audit_archive),
            [
                {
                    "source": table.name,
                    "source_id": row["id"],
                    "incident_id": row["incident_id"],
                    "record": row,
                    "created_at": row["created_at"],
                    "archived_at": now,
                }
                for row in rows
            ],
        )
        connection.execute(delete(table).where(table.c.id.in_([row["id"] for row in rows])))
        return len(rows)

    def collapse_batch(self, older_than: float, counted_until: int, rows: int, now: float) -> int:
        """Collapse up to ``rows`` repeated ``skipped`` rows older than ``older_than`` into one
        summary per (incident, action); returns how many left the log."""
        same = aliased(executions)
        alike = and_(
            same.c.incident_id == executions.c.incident_id,
            same.c.action == executions.c.action,
            same.c.state == SKIPPED,
        )
        between = (
            select(executions.c.id, executions.c.incident_id, executions.c.action)
            .add_columns(executions.c.reason, executions.c.created_at)
            .where(
                executions.c.state == SKIPPED,
                executions.c.created_at < older_than,
                executions.c.id <= counted_until,
                exists().where(alike, same.c.id < executions.c.id),
                exists().where(alike, same.c.id > executions.c.id),
            )
            .order_by(executions.c.id)
            .limit(rows)
        )
        with self.engine.begin() as connection:
            repeats = connection.execute(between).all()
            if not repeats:
                return 0
            groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
            for row in repeats:
                groups[(row.incident_id, row.action)].append(row)
            connection.execute(insert(audit_archive), [_summary(g, now) for g in groups.values()])
            connection.execute(
                delete(executions).where(executions.c.id.in_([r.id for r in repeats]))
            )
        return len(repeats)

    def records(self, incident_id: int) -> list[dict[str, Any]]:
        """What was archived of one incident, oldest first: ``source`` and the row (``record``)."""
        query = (
            select(audit_archive.c.source, audit_archive.c.record, audit_archive.c.archived_at)
            .where(audit_archive.c.incident_id == incident_id)
            .order_by(audit_archive.c.created_at, audit_archive.c.id)
        )
        with self.reads.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def _summary(rows: list[Any], now: float) -> dict[str, Any]:
    """One archive row for repeats of a (incident, action), keyed by the first one's id."""
    first, last = rows[0], rows[-1]
    reasons = Counter(row.reason for row in rows).most_common(_REASONS_KEPT)
    return {
        "source": REPEATS,
        "source_id": first.id,
        "incident_id": first.incident_id,
        "record": {
            "action": first.action,
            "state": SKIPPED,
            "count": len(rows),
            "first_id": first.id,
            "last_id": last.id,
            "first_at": first.created_at,
            "last_at": last.created_at,
            "reasons": [{"reason": reason, "count": count} for reason, count in reasons],
        },
        "created_at": first.created_at,
        "archived_at": now,
    }
