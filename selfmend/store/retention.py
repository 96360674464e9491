"""The retention stage's work: nothing in the store grows forever.

One run, in order: fold the audit log into the /metrics summary (so nothing pruned after is
uncounted); delete log lines, anomalies, sent notifications and breaker events past their
retention, and the live settings no application has read for as long; archive the audit rows
of incidents closed long ago and collapse repeated ``skipped`` rows; fold raw samples past
their retention into minute and hour aggregates; delete aggregates past theirs (some the fold
just wrote). The cheap deletes go before the fold, the slowest step, which may well use the
whole budget.

Every step works in batches of about ``batch_rows`` rows, one transaction each, so a run never
holds a long transaction or a long lock. Each step runs at least one batch, and no further one
once ``budget_seconds`` have passed: every table makes progress on every run, and a store that
fell far behind is caught up over several runs (``finished`` says so).

One run at a time: a run holds the ``retention`` lease (store/leases.py), and a run started while
another holds it does nothing and says so (``held_by``); two at once would archive the same rows.

On PostgreSQL a run ends with a plain VACUUM of the tables it deleted from, so the next rows
reuse the space at once: autovacuum waits for a fifth of a table to be dead, and the samples
table would carry that much bloat (SQLite reuses freed pages by itself). The batches leave it
the last ``VACUUM_SHARE`` of the budget, and it never runs past the budget.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from sqlalchemy import Column, Connection, Engine, Table, delete, select
from sqlalchemy.exc import DBAPIError

from selfmend.store.archive import AuditArchive
from selfmend.store.leases import LeaseStore
from selfmend.store.rollups import HOUR, MINUTE, Rollups
from selfmend.store.summary import StepCounts
from selfmend.store.tables import (
    anomalies,
    breaker_events,
    log_events,
    notifications,
    settings_read,
)

log = structlog.get_logger(__name__)

HOURS = 3600.0
ARCHIVE_INCIDENTS_PER_BATCH = 200  # an incident has a handful of audit rows
LEASE = "retention"
VACUUM_SHARE = 0.1  # of the budget, kept from the batches for the VACUUMs on PostgreSQL
MIN_VACUUM_SECONDS = 1.0  # less left than this: the table is left to autovacuum


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in hours, and how a run is bounded."""

    raw_hours: float = 24.0
    minute_hours: float = 168.0
    hour_hours: float = 2160.0
    event_hours: float = 720.0
    settings_read_hours: float = 720.0  # at least set_control's lookback, which reads them
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
    held_by: str | None = None  # another run held the lease: this one did nothing
    vacuumed: list[str] = field(default_factory=list)  # tables VACUUMed to the end
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
    (settings_read, settings_read.c.last_read_at),
)


@dataclass
class _Run:
    report: RetentionReport
    began: float
    budget_seconds: float  # the whole run's, VACUUM included
    batch_seconds: float  # the share the batches may use

    def batches(self, step: Callable[[], int], size: float) -> int:
        """Run ``step`` (one batch, returning its rows) until it returns fewer than ``size`` or
        the batches' budget is spent. The first batch runs whatever is spent: the budget is
        shared by the steps, and one slow step must not starve the others."""
        total = 0
        while True:
            done = step()
            self.report.batches += 1
            total += done
            if done < size:
                return total
            if self.spent():
                self.report.finished = False
                return total

    def spent(self) -> bool:
        return self.elapsed() > self.batch_seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def left(self) -> float:
        """Seconds left of the whole budget."""
        return self.budget_seconds - self.elapsed()


class Retention:
    def __init__(self, engine: Engine, policy: RetentionPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self.rollups = Rollups(engine)
        self.step_counts = StepCounts(engine)
        self.archive = AuditArchive(engine)
        self.leases = LeaseStore(engine)

    def run(self, now: float | None = None) -> RetentionReport:
        """One run, unless another holds the lease (``held_by`` then names it)."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Past the run's end even if it overruns by a batch or two; a crashed run's lease
        # lapses by itself.
        lease_seconds = 2 * self.policy.budget_seconds + 60.0
        if self.leases.hold(LEASE, holder, lease_seconds) is None:
            held_by = self.leases.holder(LEASE)
            log.info("retention.held_elsewhere", holder=held_by)
            return RetentionReport(finished=False, held_by=held_by or "another run")
        try:
            return self._run(time.time() if now is None else now)
        finally:
            self.leases.release(LEASE, holder)

    def _run(self, now: float) -> RetentionReport:
        budget = self.policy.budget_seconds
        vacuums = self.engine.dialect.name == "postgresql"
        run = _Run(
            RetentionReport(), time.monotonic(), budget, budget * (1 - VACUUM_SHARE * vacuums)
        )
        policy, rows = self.policy, self.policy.batch_rows
        run.report.counted = run.batches(lambda: self.step_counts.fold_batch(now, rows), rows)
        self._prune_events(now, run)
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
        self._prune_aggregates(now, run)  # after the fold, which may add some past their age
        if vacuums:
            self._vacuum(run)
        run.report.seconds = run.elapsed()
        return run.report

    def _prune_aggregates(self, now: float, run: _Run) -> None:
        policy, rows = self.policy, self.policy.batch_rows
        for resolution, hours in ((MINUTE, policy.minute_hours), (HOUR, policy.hour_hours)):
            cutoff = now - hours * HOURS
            run.report.deleted[f"rollups_{resolution}s"] = run.batches(
                lambda r=resolution, c=cutoff: self.rollups.prune_batch(r, c, rows), rows
            )

    def _prune_events(self, now: float, run: _Run) -> None:
        policy, rows = self.policy, self.policy.batch_rows
        for table, column in PRUNED:
            hours = policy.settings_read_hours if table is settings_read else policy.event_hours
            cutoff = now - hours * HOURS
            run.report.deleted[table.name] = run.batches(
                lambda t=table, c=column, cut=cutoff: self._prune_batch(t, c, cut), rows
            )

    def _fold_samples(self, now: float, run: _Run) -> int:
        # A whole minute: the newest aggregates then cover whole minutes of raw samples.
        cutoff = (now - self.policy.raw_hours * HOURS) // MINUTE * MINUTE
        rows, folded = self.policy.batch_rows, 0
        for index, group in enumerate(self.rollups.groups(cutoff, rows)):
            if index and run.spent():
                run.report.finished = False
                break
            # A group is one batch; a series alone may have more, folded in slices.
            size = rows if len(group) == 1 else math.inf
            folded += run.batches(lambda g=group: self.rollups.fold_batch(g, cutoff, rows), size)
        return folded

    def _vacuum(self, run: _Run) -> None:
        """VACUUM (not FULL: it takes no lock that stops writers) what this run deleted from,
        each table on its own and within what is left of the budget. One cut short, or not
        started for want of time, is logged and left to autovacuum: it only makes the space
        reusable sooner."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            try:
                for name in _touched(run.report):
                    left = run.left()
                    if left < MIN_VACUUM_SECONDS:
                        log.info("retention.vacuum_skipped", table=name, seconds_left=left)
                        continue
                    if _vacuum_one(connection, name, left):
                        run.report.vacuumed.append(name)
            finally:
                connection.exec_driver_sql("RESET statement_timeout")

    def _prune_batch(self, table: Table, column: Column, cutoff: float) -> int:
        (key,) = table.primary_key.columns
        oldest = select(key).where(column < cutoff).limit(self.policy.batch_rows)
        with self.engine.begin() as connection:
            return connection.execute(delete(table).where(key.in_(oldest))).rowcount


def _touched(report: RetentionReport) -> list[str]:
    """The tables a run deleted from, by name."""
    touched = {"samples": report.folded, "sample_rollups": report.folded}
    touched["executions"] = report.archived + report.collapsed
    touched["verifications"] = report.archived  # archiving moves their rows too
    touched.update(report.deleted)
    names = {"sample_rollups" if n.startswith("rollups_") else n for n, c in touched.items() if c}
    return sorted(names)


def _vacuum_one(connection: Connection, name: str, seconds: float) -> bool:
    """VACUUM one table within ``seconds``; False if it was cut short (logged)."""
    try:
        connection.exec_driver_sql(f"SET statement_timeout = {int(seconds * 1000)}")
        connection.exec_driver_sql(f"VACUUM {name}")
    except DBAPIError as error:
        log.warning("retention.vacuum_cut_short", table=name, error=str(error))
        return False
    return True
