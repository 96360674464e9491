"""/metrics' audit-log counters, kept as a summary the executions log is folded into by id.

A scrape reads the summary plus the rows written since the last fold (one statement, so one
snapshot), not a GROUP BY over the whole log, and the retention stage folds the log before it
archives or collapses any row, so a counter never drops. The writers of the log are left alone:
the summary follows the log from the outside, by its ids.

Ids are taken when a row is inserted and become visible when its transaction commits, so on
PostgreSQL a row can appear behind a higher id already seen. A fold therefore stops at the first
row younger than ``settle_seconds``: an audit row's transaction is a few statements long, so one
not committed that long after its ``created_at`` is not expected.
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, func, select, text, union_all, update

from selfmend.store.engine import reads
from selfmend.store.tables import executions, step_counts, summary_cursors
from selfmend.store.upsert import insert_or_ignore

EXECUTIONS = "executions"
SETTLE_SECONDS = 300.0

_POSITION = (
    select(summary_cursors.c.position).where(summary_cursors.c.name == EXECUTIONS).scalar_subquery()
)
_AFTER = executions.c.id > func.coalesce(_POSITION, 0)
_PARTS = union_all(
    select(step_counts.c.action, step_counts.c.state, step_counts.c.count.label("n")),
    select(executions.c.action, executions.c.state, func.count().label("n"))
    .where(_AFTER)
    .group_by(executions.c.action, executions.c.state),
).subquery()
_COUNTS = select(_PARTS.c.action, _PARTS.c.state, func.sum(_PARTS.c.n)).group_by(
    _PARTS.c.action, _PARTS.c.state
)
_NEXT_IDS = (
    select(executions.c.id, executions.c.created_at)
    .where(executions.c.id > bindparam("position"))
    .order_by(executions.c.id)
    .limit(bindparam("rows"))
)
_MOVE = (
    update(summary_cursors)
    .where(summary_cursors.c.name == EXECUTIONS, summary_cursors.c.position == bindparam("old"))
    .values(position=bindparam("new"))
)
_ADD = text(
    "INSERT INTO step_counts (action, state, count) "
    "SELECT action, state, count(*) FROM executions WHERE id > :old AND id <= :new "
    "GROUP BY action, state "
    "ON CONFLICT (action, state) DO UPDATE SET count = step_counts.count + excluded.count"
)


class StepCounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._start = insert_or_ignore(summary_cursors, ["name"], returning="name")

    def counts(self) -> dict[tuple[str, str], int]:
        """(action, state) → audit rows ever written, however many were pruned since."""
        with self.reads.connect() as connection:
            return {(a, s): int(n) for a, s, n in connection.execute(_COUNTS) if n}

    def position(self) -> int:
        """The last executions id folded into the summary: rows up to it may be pruned."""
        with self.reads.connect() as connection:
            found = connection.execute(select(_POSITION.label("position"))).scalar()
        return found or 0

    def fold_batch(self, now: float, rows: int, settle_seconds: float = SETTLE_SECONDS) -> int:
        """Fold up to ``rows`` executions rows after the cursor, stopping at the first younger
        than ``settle_seconds``; returns how many. Two runs at once fold a range once: the
        cursor moves by compare-and-set in the transaction that adds the counts."""
        try:
            with self.engine.begin() as connection:
                connection.execute(self._start, {"name": EXECUTIONS, "position": 0})
                old = connection.execute(select(_POSITION)).scalar_one()
                new, folded = old, 0
                for row_id, created_at in connection.execute(
                    _NEXT_IDS, {"position": old, "rows": rows}
                ):
                    if created_at >= now - settle_seconds:
                        break
                    new, folded = row_id, folded + 1
                if not folded:
                    return 0
                if connection.execute(_MOVE, {"old": old, "new": new}).rowcount != 1:
                    raise _FoldedElsewhere
                connection.execute(_ADD, {"old": old, "new": new})
        except _FoldedElsewhere:
            return 0  # another run folded this range first; this transaction rolled back
        return folded


class _FoldedElsewhere(Exception):
    pass
