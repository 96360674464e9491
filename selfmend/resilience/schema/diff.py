"""What changed between two fingerprints of one database, each change with its severity.

Severity follows what the change can break in the application: an added table or column breaks
nothing (low); a nullable or default change can reject or alter writes (medium); a changed type
or primary key, or columns in another order (``SELECT *``, positional ``INSERT``), can break
reads and writes (high for type and key, medium for order); a dropped or renamed table or column
breaks every query that names it (critical).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from selfmend.models import Severity
from selfmend.resilience.schema.fingerprint import ColumnShape, Fingerprint, TableShape


class ChangeKind(StrEnum):
    TABLE_ADDED = "table_added"
    COLUMN_ADDED = "column_added"
    NULLABLE_CHANGED = "nullable_changed"
    DEFAULT_CHANGED = "default_changed"
    COLUMNS_REORDERED = "columns_reordered"
    TYPE_CHANGED = "type_changed"
    PRIMARY_KEY_CHANGED = "primary_key_changed"
    TABLE_DROPPED = "table_dropped"
    TABLE_RENAMED = "table_renamed"
    COLUMN_DROPPED = "column_dropped"
    COLUMN_RENAMED = "column_renamed"

    @property
    def severity(self) -> Severity:
        return SEVERITY[self]


SEVERITY = {
    ChangeKind.TABLE_ADDED: Severity.LOW,
    ChangeKind.COLUMN_ADDED: Severity.LOW,
    ChangeKind.NULLABLE_CHANGED: Severity.MEDIUM,
    ChangeKind.DEFAULT_CHANGED: Severity.MEDIUM,
    ChangeKind.COLUMNS_REORDERED: Severity.MEDIUM,
    ChangeKind.TYPE_CHANGED: Severity.HIGH,
    ChangeKind.PRIMARY_KEY_CHANGED: Severity.HIGH,
    ChangeKind.TABLE_DROPPED: Severity.CRITICAL,
    ChangeKind.TABLE_RENAMED: Severity.CRITICAL,
    ChangeKind.COLUMN_DROPPED: Severity.CRITICAL,
    ChangeKind.COLUMN_RENAMED: Severity.CRITICAL,
}
SEVERITY_ORDER = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class SchemaChange:
    """One change. ``table`` and ``column`` name it as it is now (a dropped one as it was);
    ``before`` and ``after`` hold what changed (a name, a type, a column, a list of names)."""

    kind: ChangeKind
    table: str
    column: str | None = None
    before: Any = None
    after: Any = None

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    def describe(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        match self.kind:
            case ChangeKind.TABLE_ADDED | ChangeKind.COLUMN_ADDED:
                return f"{where} added"
            case ChangeKind.TABLE_DROPPED | ChangeKind.COLUMN_DROPPED:
                return f"{where} dropped"
            case ChangeKind.TABLE_RENAMED | ChangeKind.COLUMN_RENAMED:
                return f"{where} renamed from {self.before}"
            case ChangeKind.NULLABLE_CHANGED:
                return f"{where} made {'nullable' if self.after else 'NOT NULL'}"
            case _:
                return (
                    f"{where} {self.kind.removesuffix('_changed')}: {self.before} -> {self.after}"
                )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "table": self.table,
            "column": self.column,
            "before": self.before,
            "after": self.after,
        }


def highest(changes: Iterable[SchemaChange]) -> Severity | None:
    return max((c.severity for c in changes), key=SEVERITY_ORDER.index, default=None)


def diff(before: Fingerprint, after: Fingerprint) -> list[SchemaChange]:
    """The changes from ``before`` to ``after``, tables in name order."""
    dropped = sorted(before.tables.keys() - after.tables.keys())
    added = sorted(after.tables.keys() - before.tables.keys())
    renamed = _renamed_tables(before, after, dropped, added)
    changes = [
        SchemaChange(ChangeKind.TABLE_RENAMED, new, before=old, after=new)
        for old, new in renamed.items()
    ]
    changes += [
        SchemaChange(ChangeKind.TABLE_DROPPED, name, before=before.tables[name].as_dict())
        for name in dropped
        if name not in renamed
    ]
    changes += [
        SchemaChange(ChangeKind.TABLE_ADDED, name, after=after.tables[name].as_dict())
        for name in added
        if name not in renamed.values()
    ]
    for name in sorted(before.tables.keys() & after.tables.keys()):
        changes += _table_changes(before.tables[name], after.tables[name])
    return changes


def _renamed_tables(
    before: Fingerprint, after: Fingerprint, dropped: list[str], added: list[str]
) -> dict[str, str]:
    """Dropped table → added table, where the added one has exactly the dropped one's columns
    and key and no other dropped table has them too."""

    def shape(table: TableShape) -> tuple[Any, ...]:
        return table.columns, table.primary_key

    renamed = {}
    for old in dropped:
        same = [new for new in added if shape(after.tables[new]) == shape(before.tables[old])]
        twins = [
            other for other in dropped if shape(before.tables[other]) == shape(before.tables[old])
        ]
        if len(same) == 1 and len(twins) == 1:
            renamed[old] = same[0]
    return renamed


def _table_changes(before: TableShape, after: TableShape) -> list[SchemaChange]:
    dropped = [c for c in before.columns if after.column(c.name) is None]
    added = [c for c in after.columns if before.column(c.name) is None]
    renames = dict(_renamed_columns(before, after, dropped, added))
    table = after.name
    changes = []
    for old, new in renames.items():
        changes.append(SchemaChange(ChangeKind.COLUMN_RENAMED, table, new.name, old.name, new.name))
        changes += _column_changes(table, old, new)
    changes += [
        SchemaChange(ChangeKind.COLUMN_DROPPED, table, c.name, before=c.as_dict())
        for c in dropped
        if c not in renames
    ]
    changes += [
        SchemaChange(ChangeKind.COLUMN_ADDED, table, c.name, after=c.as_dict())
        for c in added
        if c not in renames.values()
    ]
    for old in before.columns:
        new = after.column(old.name)
        if new is not None:
            changes += _column_changes(table, old, new)
    now_named = {old.name: new.name for old, new in renames.items()}
    changes += _order_and_key_changes(before, after, now_named)
    return changes


def _renamed_columns(
    before: TableShape, after: TableShape, dropped: list[ColumnShape], added: list[ColumnShape]
) -> list[tuple[ColumnShape, ColumnShape]]:
    """(dropped, added) pairs that are one column renamed.

    Reflection cannot tell a rename from a drop plus an add, so a pair must be clear: the same
    type, and either the same place among the columns kept by name (``RENAME COLUMN`` leaves a
    column between the same neighbours, while ``ADD COLUMN`` puts it last), or else the only
    dropped and the only added column of that type left in the table. Anything less clear stays
    a drop and an add: critical as well, so a doubtful pair is never hidden, only named less
    helpfully. A column dropped from the end and one of its type added in the same interval
    look exactly like a rename, and are reported as one.
    """
    kept = {c.name for c in before.columns} & {c.name for c in after.columns}
    slot_before, slot_after = _slots(before, kept), _slots(after, kept)
    pairs = {
        old: new
        for old in dropped
        for new in added
        if old.type == new.type and slot_before[old.name] == slot_after[new.name]
    }
    left_dropped = [c for c in dropped if c not in pairs]
    left_added = [c for c in added if c not in pairs.values()]
    for old in left_dropped:
        same_dropped = [c for c in left_dropped if c.type == old.type]
        same_added = [c for c in left_added if c.type == old.type]
        if len(same_dropped) == 1 and len(same_added) == 1:
            pairs[old] = same_added[0]
    return list(pairs.items())


def _slots(table: TableShape, kept: set[str]) -> dict[str, tuple[int, int]]:
    """Where each column not in ``kept`` sits: after how many kept columns, and its place among
    the columns not kept since the last kept one."""
    slots, kept_before, run = {}, 0, 0
    for column in table.columns:
        if column.name in kept:
            kept_before, run = kept_before + 1, 0
        else:
            slots[column.name] = (kept_before, run)
            run += 1
    return slots


def _column_changes(table: str, old: ColumnShape, new: ColumnShape) -> list[SchemaChange]:
    changes = []
    if old.type != new.type:
        changes.append(SchemaChange(ChangeKind.TYPE_CHANGED, table, new.name, old.type, new.type))
    if old.nullable != new.nullable:
        changes.append(
            SchemaChange(ChangeKind.NULLABLE_CHANGED, table, new.name, old.nullable, new.nullable)
        )
    if old.default != new.default:
        changes.append(
            SchemaChange(ChangeKind.DEFAULT_CHANGED, table, new.name, old.default, new.default)
        )
    return changes


def _order_and_key_changes(
    before: TableShape, after: TableShape, now_named: dict[str, str]
) -> list[SchemaChange]:
    """Columns kept (renamed ones under their new name) in another order, and a primary key
    over other columns."""
    kept_before = [now_named.get(c.name, c.name) for c in before.columns]
    kept_before = [name for name in kept_before if after.column(name) is not None]
    kept_after = [c.name for c in after.columns if c.name in kept_before]
    changes = []
    if kept_before != kept_after:
        changes.append(
            SchemaChange(ChangeKind.COLUMNS_REORDERED, after.name, None, kept_before, kept_after)
        )
    key_before = [now_named.get(name, name) for name in before.primary_key]
    if key_before != list(after.primary_key):
        changes.append(
            SchemaChange(
                ChangeKind.PRIMARY_KEY_CHANGED,
                after.name,
                None,
                list(before.primary_key),
                list(after.primary_key),
            )
        )
    return changes
