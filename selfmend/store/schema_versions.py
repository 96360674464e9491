"""Schema versions of the watched databases and the changes between them (the schema watch).

A version is numbered per database; the number is unique with the database, so when two
watchers see the same change, the second one's version is refused and it knows it came second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from selfmend.store.tables import schema_changes, schema_versions


@dataclass(frozen=True)
class SchemaVersion:
    id: int
    database: str
    number: int
    digest: str
    fingerprint: dict[str, Any]
    created_at: float


class SchemaVersionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(self, database: str) -> SchemaVersion | None:
        query = (
            select(schema_versions)
            .where(schema_versions.c.database == database)
            .order_by(schema_versions.c.number.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else SchemaVersion(**row._mapping)

    def versions(self, database: str, limit: int = 100) -> list[SchemaVersion]:
        """The newest ``limit`` versions of ``database``, newest first."""
        query = (
            select(schema_versions)
            .where(schema_versions.c.database == database)
            .order_by(schema_versions.c.number.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [SchemaVersion(**row._mapping) for row in connection.execute(query)]

    def record(
        self,
        *,
        database: str,
        number: int,
        digest: str,
        fingerprint: Mapping[str, Any],
        changes: Sequence[Mapping[str, Any]],
    ) -> SchemaVersion | None:
        """Store version ``number`` and its changes in one transaction; None when that number is
        already taken (another watcher recorded this version first)."""
        now = time.time()
        values = {
            "database": database,
            "number": number,
            "digest": digest,
            "fingerprint": dict(fingerprint),
            "created_at": now,
        }
        try:
            with self.engine.begin() as connection:
                version_id = connection.execute(
                    insert(schema_versions).values(**values)
                ).inserted_primary_key[0]
                if changes:
                    connection.execute(
                        insert(schema_changes),
                        [_change_row(version_id, change) for change in changes],
                    )
        except IntegrityError:
            return None
        return SchemaVersion(id=version_id, **values)

    def changes(self, version_id: int) -> list[dict[str, Any]]:
        """The changes that led to a version, as the diff listed them."""
        query = (
            select(schema_changes)
            .where(schema_changes.c.version_id == version_id)
            .order_by(schema_changes.c.id)
        )
        with self.engine.connect() as connection:
            return [
                {
                    "kind": row.kind,
                    "severity": row.severity,
                    "table": row.table_name,
                    "column": row.column_name,
                    "before": row.before,
                    "after": row.after,
                }
                for row in connection.execute(query)
            ]


def _change_row(version_id: int, change: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "kind": change["kind"],
        "severity": change["severity"],
        "table_name": change["table"],
        "column_name": change["column"],
        "before": change["before"],
        "after": change["after"],
    }
