"""What a write returns: per row, written (with the heals it needed) or refused (with why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfmend.errors import WriteRejected


@dataclass(frozen=True)
class Heal:
    """Input ``key`` was written to ``column`` by ``rule`` (normalised, learned, synonym,
    model)."""

    key: str
    column: str
    rule: str


@dataclass(frozen=True)
class RowError:
    index: int
    field: str | None
    reason: str
    kind: str

    def __str__(self) -> str:
        where = f" {self.field!r}" if self.field else ""
        return f"row {self.index}{where}: {self.reason}"

    def exception(self) -> WriteRejected:
        return WriteRejected(str(self), field=self.field, kind=self.kind)


@dataclass(frozen=True)
class RowWritten:
    """``key`` (the primary key) and ``entry_id`` (its log entry) are known for healed rows;
    clean rows are written without RETURNING, which is what keeps a clean batch fast."""

    index: int
    heals: tuple[Heal, ...] = ()
    key: dict[str, Any] | None = None
    entry_id: int | None = None


@dataclass(frozen=True)
class BatchResult:
    rows: tuple[RowWritten | RowError, ...]  # in the order the rows were given

    @property
    def written(self) -> list[RowWritten]:
        return [row for row in self.rows if isinstance(row, RowWritten)]

    @property
    def errors(self) -> list[RowError]:
        return [row for row in self.rows if isinstance(row, RowError)]

    @property
    def ok(self) -> bool:
        return not self.errors


def in_order(*parts: list[RowWritten] | list[RowError]) -> BatchResult:
    rows = [row for part in parts for row in part]
    return BatchResult(tuple(sorted(rows, key=lambda row: row.index)))
