"""The retention stage's work: nothing in the store grows forever.

One run, in order: fold the audit log into the /metrics summary (so nothing pruned after is
uncounted); archive the audit rows of incidents closed long ago and collapse repeated ``skipped``
rows; fold raw samples past their retention into minute and hour aggregates; delete aggregates,
log lines, anomalies, sent notifications and breaker events past theirs.

Every step works in batches of about ``batch_rows`` rows, one transaction each, so a run never
holds a long transaction or a long lock, and it stops starting batches once ``budget_seconds``
have passed: a store that fell far behind is caught up over several runs (``finished`` says so).

On PostgreSQL a run ends with a plain VACUUM of the tables it deleted from, so the next rows
reuse the space at once: autovacuum waits for a fifth of a table to be dead, and the samples
table would carry that much bloat (SQLite reuses freed pages by itself).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from sqlalchemy import Column, Engine, Table, delete, select
from sqlalchemy.exc import DBAPIError

from selfmend.store.archive import AuditArchive
from selfmend.store.rollups import HOUR, MINUTE, Rollups
from selfmend.store.summary import StepCounts
from selfmend.store.tables import anomalies, breaker_events, log_events, notifications

log = structlog.get_logger(__name__)

HOURS = 3600.0
ARCHIVE_INCIDENTS_PER_BATCH = 200  # an incident has a handful of audit rows


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in hours, and how a run is bounded."""

    raw_hours: float = 24.0
    minute_hours: float = 168.0
    hour_hours: float = 2160.0
    event_hours: float = 720.0
    audit_archive_hours: float = 2160.0
    batch_rows: int = 20_000
    budget_seconds: float = 600.0


@dataclass
class RetentionReport:
    counted: int = 0  # audit rows folded into the /metrics summary
    archived: int = 0  # audit rows moved to the archive
    collapsed: int = 0  # repeated skipped rows collapsed into summaries
    folded: int = 0  # raw samples folded into aggregates
    deleted: dict[str, int] = field(default_factory=dict)  # rows pruned by age, per table
    batches: int = 0
    finished: bool = True  # False: the budget ran out; the next run continues
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Pruned by age: (table, its time column). Notifications only once sent: an unsent one is still
# owed to a person, and a NULL ``sent_at`` is never older than anything.
PRUNED: tuple[tuple[Table, Column], ...] = (
    (log_events, log_events.c.ts),
    (anomalies, anomalies.c.ts),
    (notifications, notifications.c.sent_at),
    (breaker_events, breaker_events.c.created_at),
)


@dataclass
class _Run:
    report: RetentionReport
    began: float
    budget_seconds: float

    def batches(self, step: Callable[[], int], size: float) -> int:
        """Run ``step`` (one batch, returning its rows) until it returns fewer than ``size`` or
        the budget is spent; then no further batch of the run starts."""
        total = 0
        while self.report.finished:
            done = step()
            self.report.batches += 1
            total += done
            if done < size:
                break
            if self.spent():
                self.report.finished = False
        return total

    def spent(self) -> bool:
        return time.monotonic() - self.began > self.budget_seconds


class Retention:
    def __init__(self, engine: Engine, policy: RetentionPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self.rollups = Rollups(engine)
        self.step_counts = StepCounts(engine)
        self.archive = AuditArchive(engine)

    def run(self, now: float | None = None) -> RetentionReport:
        now = time.time() if now is None else now
        run = _Run(RetentionReport(), time.monotonic(), self.policy.budget_seconds)
        policy, rows = self.policy, self.policy.batch_rows
        run.report.counted = run.batches(lambda: self.step_counts.fold_batch(now, rows), rows)
        counted = self.step_counts.position()
        archive_before = now - policy.audit_archive_hours * HOURS
        run.report.archived = run.batches(
            lambda: self.archive.archive_batch(
                archive_before, counted, ARCHIVE_INCIDENTS_PER_BATCH, now
            ),
            1,  # a batch is whole incidents: go on while any moved
        )
        skips_before = now - policy.event_hours * HOURS
        run.report.collapsed = run.batches(
            lambda: self.archive.collapse_batch(skips_before, counted, rows, now), rows
        )
        run.report.folded = self._fold_samples(now, run)
        for resolution, hours in ((MINUTE, policy.minute_hours), (HOUR, policy.hour_hours)):
            cutoff = now - hours * HOURS
            run.report.deleted[f"rollups_{resolution}s"] = run.batches(
                lambda r=resolution, c=cutoff: self.rollups.prune_batch(r, c, rows), rows
            )
        for table, column in PRUNED:
            cutoff = now - policy.event_hours * HOURS
            run.report.deleted[table.name] = run.batches(
                lambda t=table, c=column, cut=cutoff: self._prune_batch(t, c, cut), rows
            )
        if self.engine.dialect.name == "postgresql":
            self._vacuum(run)
        run.report.seconds = time.monotonic() - run.began
        return run.report

    def _fold_samples(self, now: float, run: _Run) -> int:
        # A whole minute: the newest aggregates then cover whole minutes of raw samples.
        cutoff = (now - self.policy.raw_hours * HOURS) // MINUTE * MINUTE
        rows, folded = self.policy.batch_rows, 0
        for group in self.rollups.groups(cutoff, rows):
            if not run.report.finished:
                break
            # A group is one batch; a series alone may have more, folded in slices.
            size = rows if len(group) == 1 else math.inf
            folded += run.batches(lambda g=group: self.rollups.fold_batch(g, cutoff, rows), size)
            if run.spent():
                run.report.finished = False
        return folded

    def _vacuum(self, run: _Run) -> None:
        """VACUUM (not FULL: it takes no lock that stops writers) what this run deleted from,
        each within what is left of the budget (10 s at least). One cut short is logged and
        left to autovacuum: it only makes the space reusable sooner."""
        report = run.report
        touched = {"samples": report.folded, "sample_rollups": report.folded}
        touched["executions"] = report.archived + report.collapsed
        touched.update(report.deleted)
        names = {
            "sample_rollups" if n.startswith("rollups_") else n for n, c in touched.items() if c
        }
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            try:
                for name in sorted(names):
                    left = max(10.0, run.budget_seconds - (time.monotonic() - run.began))
                    connection.exec_driver_sql(f"SET statement_timeout = {int(left * 1000)}")
                    connection.exec_driver_sql(f"VACUUM {name}")
            except DBAPIError as error:
                log.warning("retention.vacuum_cut_short", table=name, error=str(error))
            finally:
                connection.exec_driver_sql("RESET statement_timeout")

    def _prune_batch(self, table: Table, column: Column, cutoff: float) -> int:
        oldest = select(table.c.id).where(column < cutoff).limit(self.policy.batch_rows)
        with self.engine.begin() as connection:
            return connection.execute(delete(table).where(table.c.id.in_(oldest))).rowcount
