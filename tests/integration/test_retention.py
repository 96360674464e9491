"""The retention stage on real PostgreSQL, where a fold is one statement of data-modifying CTEs:
aggregates equal to the raw samples they replaced, nothing folded twice on a rerun or by two runs
at once, and /metrics' counters unchanged by archiving. Uses a database of its own (no Redis, no
worker)."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from sqlalchemy import event, insert, select

from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.retention import HOURS, Retention, RetentionPolicy
from selfmend.store.summary import StepCounts
from selfmend.store.tables import (
    log_events,
    sample_rollups,
    samples,
    verifications,
)
from tests.audit_rows import NOW, incident, step
from tests.resources import fresh_database

pytestmark = pytest.mark.integration

POLICY = RetentionPolicy(
    raw_hours=2, minute_hours=24, hour_hours=240, audit_archive_hours=72, batch_rows=500
)


@pytest.fixture
def store():
    built = Store.from_url(fresh_database("retention"), migrate=True)
    yield built
    built.close()


def expected_rollups(rows) -> dict[tuple, tuple]:
    grouped = defaultdict(list)
    for series_id, ts, value in rows:
        for resolution in (60, 3600):
            grouped[(series_id, resolution, ts // resolution * resolution)].append(value)
    return {k: (min(v), max(v), sum(v), len(v)) for k, v in grouped.items()}


def test_postgres_folds_exactly_once_even_with_two_runs_at_once(store):
    points = [
        Sample(series=f"m.s{i % 7}", ts=NOW - 5 * HOURS + i * 3.7, value=(i * 37) % 101, labels={})
        for i in range(4000)
    ]
    store.samples.insert(points)
    with store.engine.connect() as connection:
        raw = [tuple(r) for r in connection.execute(select(samples))]
    reports = []

    def run() -> None:
        reports.append(Retention(store.engine, POLICY).run(NOW))

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(120)

    old = [row for row in raw if row[1] < NOW - 2 * HOURS]
    assert sum(report.folded for report in reports) == len(old)
    with store.engine.connect() as connection:
        stored = {
            (r[0], r[1], r[2]): tuple(r[3:]) for r in connection.execute(select(sample_rollups))
        }
        left = connection.execute(select(samples.c.ts)).scalars().all()
    expected = expected_rollups(old)
    assert stored.keys() == expected.keys()
    for key, (low, high, total, count) in expected.items():
        assert stored[key][:2] == (low, high) and stored[key][3] == count
        assert stored[key][2] == pytest.approx(total)
    assert min(left) >= NOW - 2 * HOURS
    assert Retention(store.engine, POLICY).run(NOW).folded == 0
    window = store.samples.rollup_window("m.s0", NOW - 5 * HOURS, NOW, 3600)
    assert sum(r.count for r in window) == sum(1 for p in points if p.series == "m.s0")


def test_postgres_counters_survive_archiving(store):
    closed = incident(store, closed_at=NOW - 200 * HOURS)
    for state in ("planned", "applying", "applied", "verified"):
        step(store, closed, state, at=NOW - 201 * HOURS)
    before = StepCounts(store.engine).counts()

    report = Retention(store.engine, POLICY).run(NOW)

    assert report.counted == 4 and report.archived == 4
    assert StepCounts(store.engine).counts() == before
    assert len(Retention(store.engine, POLICY).archive.records(closed)) == 4


def old_rows_in_every_table(store: Store) -> None:
    """An archivable incident with a verified execution, samples to fold, old log lines."""
    store.samples.insert(
        [Sample(series="m.s0", ts=NOW - 5 * HOURS + i, value=1.0, labels={}) for i in range(50)]
    )
    closed = incident(store, closed_at=NOW - 200 * HOURS)
    execution = step(store, closed, "verified", at=NOW - 201 * HOURS)
    with store.engine.begin() as connection:
        connection.execute(
            insert(verifications).values(
                incident_id=closed,
                execution_id=execution,
                before={},
                after={},
                verdict="fixed",
                created_at=NOW - 200 * HOURS,
            )
        )
        connection.execute(
            insert(log_events).values(ts=NOW - 800 * HOURS, level="ERROR", message="x", logger="l")
        )


def vacuum_statements(store: Store, fail_first: bool = False) -> list[str]:
    """Every VACUUM and statement_timeout the store runs from now, in order; with
    ``fail_first``, the first VACUUM fails as one cut short by its timeout would."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("VACUUM", "SET statement_timeout")):
            seen.append(statement)
            if fail_first and statement.startswith("VACUUM") and len(seen) == 2:
                return "VACUUM no_such_table", parameters
        return statement, parameters

    event.listen(store.engine, "before_cursor_execute", record, retval=True)
    return seen


def test_postgres_vacuum_goes_on_past_a_table_cut_short_and_covers_verifications(store):
    old_rows_in_every_table(store)
    seen = vacuum_statements(store, fail_first=True)

    report = Retention(store.engine, POLICY).run(NOW)

    assert report.archived == 2 and report.folded == 50
    vacuumed = [s.split()[1] for s in seen if s.startswith("VACUUM")]
    expected = ["executions", "log_events", "sample_rollups", "samples", "verifications"]
    assert vacuumed == expected
    assert report.vacuumed == expected[1:]  # the first was cut short


def test_postgres_vacuum_never_runs_past_the_budget(store):
    old_rows_in_every_table(store)
    seen = vacuum_statements(store)

    spent = Retention(store.engine, RetentionPolicy(**{**POLICY.__dict__, "budget_seconds": 0.0}))
    report = spent.run(NOW)

    assert not [s for s in seen if s.startswith("VACUUM")]
    assert report.folded == 50  # every step still ran a batch
    roomy = Retention(store.engine, RetentionPolicy(**{**POLICY.__dict__, "budget_seconds": 30.0}))
    old_rows_in_every_table(store)
    roomy.run(NOW)
    timeouts = [int(s.split("=")[1]) for s in seen if s.startswith("SET")]
    assert timeouts and all(t <= 30_000 for t in timeouts)
