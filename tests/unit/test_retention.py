"""The retention stage on SQLite: raw samples roll up into aggregates equal to what they replaced,
a rerun changes nothing, every transaction is bounded, the audit log is archived rather than
lost, and /metrics' counters do not drop when the log is pruned."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from prometheus_client import generate_latest
from sqlalchemy import event, func, insert, select

from selfmend.api.metrics import registry
from selfmend.errors import InvalidInput
from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.retention import HOURS, Retention, RetentionPolicy
from selfmend.store.rollups import HOUR, MINUTE, Rollups
from selfmend.store.summary import StepCounts
from selfmend.store.tables import (
    anomalies,
    breaker_events,
    executions,
    log_events,
    notifications,
    sample_rollups,
    samples,
    series,
    verifications,
)
from tests.audit_rows import NOW, incident, step

DAY = 24 * HOURS


@pytest.fixture
def store(tmp_path):
    built = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    yield built
    built.close()


def policy(**changes) -> RetentionPolicy:
    defaults = dict(raw_hours=2, minute_hours=24, hour_hours=240, event_hours=48)
    return RetentionPolicy(**{**defaults, "audit_archive_hours": 72, **changes})


def noisy_samples(keys: int = 3, hours: float = 5, seed: int = 1) -> list[Sample]:
    """Samples at irregular times (several per minute, some minutes none) over ``hours``."""
    rng = random.Random(seed)
    points, ts = [], NOW - hours * HOURS
    while ts < NOW:
        ts += rng.uniform(1, 40)
        for key in range(rng.randint(1, keys)):
            points.append(Sample(series=f"m.s{key}", ts=ts, value=rng.gauss(50, 20), labels={}))
    return points


def aggregates(points: list[tuple[int, float, float]], resolution: int) -> dict[tuple, tuple]:
    by_bucket = defaultdict(list)
    for series_id, ts, value in points:
        by_bucket[(series_id, resolution, ts // resolution * resolution)].append(value)
    return {k: (min(v), max(v), sum(v), len(v)) for k, v in by_bucket.items()}


def stored_rollups(store: Store) -> dict[tuple, tuple]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(sample_rollups)).all()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def raw_rows(store: Store) -> list[tuple[int, float, float]]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(select(samples))]


def assert_same_aggregates(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for key, (low, high, total, count) in expected.items():
        assert found[key][0] == low and found[key][1] == high and found[key][3] == count, key
        assert found[key][2] == pytest.approx(total, rel=1e-12), key


def test_rolled_up_aggregates_equal_the_raw_samples_they_replaced(store):
    store.samples.insert(noisy_samples())
    before = raw_rows(store)
    cutoff = NOW - 2 * HOURS

    Retention(store.engine, policy()).run(NOW)

    old = [row for row in before if row[1] < cutoff]
    expected = {**aggregates(old, MINUTE), **aggregates(old, HOUR)}
    assert_same_aggregates(stored_rollups(store), expected)
    assert sorted(raw_rows(store)) == sorted(row for row in before if row[1] >= cutoff)


def test_a_rerun_changes_nothing_and_a_late_sample_merges_exactly(store):
    store.samples.insert(noisy_samples())
    before = raw_rows(store)
    retention = Retention(store.engine, policy())
    retention.run(NOW)
    first = stored_rollups(store)

    again = retention.run(NOW)

    assert again.folded == 0
    assert stored_rollups(store) == first
    late = Sample(series="m.s0", ts=NOW - 3 * HOURS + 1.0, value=-1000.0, labels={})
    store.samples.insert([late])
    assert retention.run(NOW).folded == 1
    with store.engine.connect() as connection:
        late_id = connection.execute(select(series.c.id).where(series.c.key == late.key)).scalar()
    old = [row for row in before if row[1] < NOW - 2 * HOURS] + [(late_id, late.ts, late.value)]
    expected = {**aggregates(old, MINUTE), **aggregates(old, HOUR)}
    assert_same_aggregates(stored_rollups(store), expected)


def test_every_fold_is_one_bounded_transaction(store, monkeypatch):
    store.samples.insert(noisy_samples(keys=4, hours=6))
    eligible = sum(1 for row in raw_rows(store) if row[1] < NOW - 2 * HOURS)
    folds: list[int] = []
    original = Rollups.fold_batch

    def counted(self, *args):
        folded = original(self, *args)
        folds.append(folded)
        return folded

    monkeypatch.setattr(Rollups, "fold_batch", counted)
    report = Retention(store.engine, policy(batch_rows=100)).run(NOW)

    assert report.folded == eligible == sum(folds)
    assert len(folds) >= eligible // 101
    assert max(folds) <= 101  # a slice ends on a time; samples sharing it may add one
    assert report.finished


def test_a_series_with_more_than_a_batch_is_folded_in_slices(store):
    points = [Sample(series="m.big", ts=NOW - 5 * HOURS + i, value=float(i)) for i in range(1000)]
    store.samples.insert(points)

    report = Retention(store.engine, policy(batch_rows=100)).run(NOW)

    assert report.folded == 1000 and report.finished
    assert report.batches >= 11  # ten slices of 100 and the empty look that ends them
    (hour,) = store.samples.rollup_window("m.big", 0, NOW, HOUR)
    assert (hour.count, hour.min, hour.max, hour.mean) == (1000, 0.0, 999.0, 499.5)


def test_a_spent_budget_stops_the_run_and_the_next_run_goes_on(store):
    store.samples.insert(noisy_samples(keys=4, hours=6))
    eligible = sum(1 for row in raw_rows(store) if row[1] < NOW - 2 * HOURS)
    tight = Retention(store.engine, policy(batch_rows=100, budget_seconds=0.0))

    first = tight.run(NOW)

    assert not first.finished and 0 < first.folded < eligible
    while not (report := tight.run(NOW)).finished:
        pass
    assert sum(1 for row in raw_rows(store) if row[1] < NOW - 2 * HOURS) == 0
    assert sum(r[3] for k, r in stored_rollups(store).items() if k[1] == HOUR) == eligible
    assert report.finished


def test_rollup_window_reads_the_same_before_and_after_rolling_up(store):
    store.samples.insert(noisy_samples())
    since, until = NOW - 5 * HOURS, NOW
    before = {r: store.samples.rollup_window("m.s0", since, until, r) for r in (MINUTE, HOUR)}

    Retention(store.engine, policy()).run(NOW)

    for resolution, rollups in before.items():
        after = store.samples.rollup_window("m.s0", since, until, resolution)
        assert [(r.bucket, r.min, r.max, r.count) for r in after] == [
            (r.bucket, r.min, r.max, r.count) for r in rollups
        ]
        assert [r.mean for r in after] == pytest.approx([r.mean for r in rollups], rel=1e-12)
    hours = store.samples.rollup_window("m.s0", since, until, HOUR)
    assert all(since <= r.bucket < until and r.bucket % HOUR == 0 for r in hours)
    assert sum(r.count for r in hours) == sum(
        1 for s in noisy_samples() if s.series == "m.s0" and since <= s.ts < until
    )


def test_rollup_window_refuses_a_resolution_it_does_not_keep(store):
    with pytest.raises(InvalidInput, match="resolution 300"):
        store.samples.rollup_window("m.s0", 0, NOW, 300)


def test_old_aggregates_are_pruned_by_their_own_age(store):
    store.samples.insert(noisy_samples(hours=30))
    Retention(store.engine, policy()).run(NOW)

    kept = stored_rollups(store)
    minutes = [k[2] for k in kept if k[1] == MINUTE]
    hours = [k[2] for k in kept if k[1] == HOUR]
    assert min(minutes) >= NOW - 24 * HOURS - MINUTE
    assert min(hours) < NOW - 24 * HOURS  # hour aggregates outlive the minute ones


def step_metrics(store: Store) -> list[str]:
    text = generate_latest(registry(store)).decode()
    return sorted(line for line in text.splitlines() if line.startswith("selfmend_execution_steps"))


def test_the_audit_log_of_old_incidents_is_archived_not_lost(store):
    old = incident(store, closed_at=NOW - 100 * HOURS)
    recent = incident(store, closed_at=NOW - 10 * HOURS)
    ids = [step(store, old, s, NOW - 101 * HOURS + i) for i, s in enumerate(("planned", "applied"))]
    step(store, recent, "applied", NOW - 11 * HOURS)
    with store.engine.begin() as connection:
        connection.execute(
            insert(verifications).values(
                incident_id=old,
                execution_id=ids[1],
                before={"mean": 1},
                after={"mean": 2},
                verdict="fixed",
                created_at=NOW - 100 * HOURS,
            )
        )
        originals = [dict(r._mapping) for r in connection.execute(select(executions))]

    report = Retention(store.engine, policy()).run(NOW)

    assert report.archived == 3
    assert [e.id for e in store.executions.history(old)] == []
    assert len(store.executions.history(recent)) == 1
    archived = Retention(store.engine, policy()).archive.records(old)
    assert [a["source"] for a in archived] == ["executions", "executions", "verifications"]
    assert [a["record"] for a in archived[:2]] == [o for o in originals if o["incident_id"] == old]
    assert Retention(store.engine, policy()).run(NOW).archived == 0


def test_repeated_skips_collapse_to_the_first_and_latest_with_a_summary(store):
    held = incident(store, closed_at=None)
    first = NOW - 60 * HOURS
    ids = [step(store, held, "skipped", first + 300 * i) for i in range(12)]
    latest = step(store, held, "skipped", NOW - 60)
    other = step(store, held, "skipped", first + 5, action="feature_flag")

    report = Retention(store.engine, policy()).run(NOW)

    assert report.collapsed == 11  # ids[1:] are older than 48 h and between ids[0] and latest
    assert [e.id for e in store.executions.history(held)] == [ids[0], latest, other]
    (summary,) = Retention(store.engine, policy()).archive.records(held)
    assert summary["source"] == "skipped_repeats"
    assert summary["record"]["count"] == 11
    assert summary["record"]["first_id"] == ids[1] and summary["record"]["last_id"] == ids[11]
    assert Retention(store.engine, policy()).run(NOW).collapsed == 0


def test_metrics_counters_do_not_drop_when_the_log_is_archived_or_collapsed(store):
    old = incident(store, closed_at=NOW - 100 * HOURS)
    held = incident(store, closed_at=None, target="u")
    for i, state in enumerate(("planned", "applying", "applied", "verified")):
        step(store, old, state, NOW - 101 * HOURS + i)
    for i in range(10):
        step(store, held, "skipped", NOW - 60 * HOURS + i)
    step(store, held, "skipped", NOW - 1)  # too young to fold yet: counted from the log
    before = step_metrics(store)
    assert 'selfmend_execution_steps_total{action="cache_warm",state="skipped"} 11.0' in before

    report = Retention(store.engine, policy()).run(NOW)

    assert report.archived == 4 and report.collapsed == 9 and report.counted == 14
    assert step_metrics(store) == before
    step(store, held, "skipped", NOW)
    assert StepCounts(store.engine).counts()[("cache_warm", "skipped")] == 12


def test_two_folds_of_the_summary_count_each_row_once(store):
    held = incident(store, closed_at=None)
    for i in range(50):
        step(store, held, "skipped", NOW - 1000 + i)
    counts = StepCounts(store.engine)

    assert counts.fold_batch(NOW, rows=20) == 20
    assert counts.fold_batch(NOW, rows=1000) == 30
    assert counts.fold_batch(NOW, rows=1000) == 0
    assert counts.counts() == {("cache_warm", "skipped"): 50}
    assert counts.position() == 50


def test_old_events_are_pruned_in_batches_and_unsent_notifications_kept(store):
    owner = incident(store, closed_at=None)
    store.samples.insert([Sample(series="m.s0", ts=NOW, value=1.0, labels={})])
    with store.engine.begin() as connection:
        series_id = connection.execute(select(series.c.id)).scalar_one()
        for age in (100, 10):
            at = NOW - age * HOURS
            for _ in range(150):
                connection.execute(
                    insert(log_events).values(ts=at, level="ERROR", message="x", logger="l")
                )
                connection.execute(
                    insert(anomalies).values(
                        series_id=series_id, ts=at, value=1.0, score=9.0, detector="stream"
                    )
                )
                connection.execute(
                    insert(breaker_events).values(
                        breaker="b",
                        from_state="closed",
                        to_state="open",
                        version=1,
                        reason="r",
                        process="p",
                        evidence={},
                        created_at=at,
                    )
                )
            for sent in (at, None):
                connection.execute(
                    insert(notifications).values(
                        incident_id=owner,
                        kind="escalated",
                        payload={},
                        created_at=at,
                        attempts=1,
                        next_attempt_at=at,
                        sent_at=sent,
                    )
                )

    report = Retention(store.engine, policy(batch_rows=100)).run(NOW)

    assert report.deleted["log_events"] == report.deleted["anomalies"] == 150
    assert report.deleted["breaker_events"] == 150 and report.deleted["notifications"] == 1
    with store.engine.connect() as connection:
        for table in (log_events, anomalies, breaker_events):
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 150
        unsent = select(func.count()).where(notifications.c.sent_at.is_(None))
        assert connection.execute(unsent).scalar() == 2


def test_the_beat_runs_retention_on_its_own_queue_with_an_expiry():
    from schedules import build_schedule
    from selfmend.config import Settings
    from workers.app import STAGES

    entry = build_schedule(Settings(retention_interval=1800))["selfmend.retention"]

    assert entry == {
        "task": "selfmend.retention",
        "schedule": 1800,
        "options": {"expires": 3600},
    }
    assert "retention" in STAGES


def test_the_retention_task_runs_the_stage_and_returns_its_report(tmp_path):
    from selfmend.config import Settings
    from selfmend.system import System
    from tasks.retention import retention
    from workers import runtime

    system = System.from_settings(Settings(home=tmp_path / "home", raw_retention_hours=1))
    system.store.samples.insert(
        [Sample(series="m.s0", ts=1_000_000.0 + i, value=float(i), labels={}) for i in range(90)]
    )
    runtime.install(system)
    try:
        report = retention.apply().get()
    finally:
        runtime.reset()
        system.store.close()

    assert report["folded"] == 90 and report["finished"] is True
    assert set(report["deleted"]) >= {"log_events", "anomalies", "rollups_60s", "rollups_3600s"}


def old_log_lines(store: Store, count: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            insert(log_events),
            [
                {"ts": NOW - 100 * HOURS, "level": "ERROR", "message": "x", "logger": "l"}
                for _ in range(count)
            ],
        )


def test_every_step_makes_progress_even_when_folding_spends_the_budget(store):
    store.samples.insert(noisy_samples(keys=4, hours=6))
    old_log_lines(store, 150)

    report = Retention(store.engine, policy(batch_rows=100, budget_seconds=0.0)).run(NOW)

    assert not report.finished and report.folded > 0
    assert report.deleted["log_events"] >= 100


def test_a_verification_written_while_its_incident_is_archived_is_kept(store):
    old = incident(store, closed_at=NOW - 100 * HOURS)
    applied = step(store, old, "applied", NOW - 101 * HOURS)
    late = dict(incident_id=old, execution_id=applied, before={}, after={}, verdict="fixed")

    def verify_after_the_read(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT") and "FROM verifications" in statement and late:
            # Another worker's verify commits between the archive's read and its delete.
            with store.engine.begin() as other:
                other.execute(insert(verifications).values(**late, created_at=NOW))
            late.clear()

    event.listen(store.engine, "after_cursor_execute", verify_after_the_read)
    try:
        Retention(store.engine, policy()).run(NOW)
    finally:
        event.remove(store.engine, "after_cursor_execute", verify_after_the_read)

    archive = Retention(store.engine, policy()).archive
    with store.engine.connect() as connection:
        kept = connection.execute(select(func.count()).select_from(verifications)).scalar()
    archived = [a for a in archive.records(old) if a["source"] == "verifications"]
    assert kept + len(archived) == 1
    Retention(store.engine, policy()).run(NOW)
    sources = sorted(a["source"] for a in archive.records(old))
    assert sources == ["executions", "verifications"]


def test_rollup_window_is_whole_when_a_fold_commits_while_it_reads(store):
    store.samples.insert(noisy_samples())
    since, until = NOW - 5 * HOURS, NOW
    rollups = Rollups(store.engine)
    before = sum(r.count for r in rollups.window("m.s0", since, until, HOUR))
    folds = [Retention(store.engine, policy())]

    def fold_after_the_first_read(conn, cursor, statement, parameters, context, executemany):
        if folds and "sample_rollups" in statement:
            folds.pop().run(NOW)

    engine = rollups.reads
    event.listen(engine, "after_cursor_execute", fold_after_the_first_read)
    try:
        during = sum(r.count for r in rollups.window("m.s0", since, until, HOUR))
    finally:
        event.remove(engine, "after_cursor_execute", fold_after_the_first_read)

    assert not folds  # the fold did run while the window was read
    assert during == before


def test_a_second_run_at_once_does_nothing_and_says_another_holds_it(store):
    from selfmend.store.leases import LeaseStore

    store.samples.insert(noisy_samples())
    leases = LeaseStore(store.engine)
    assert leases.hold("retention", "another-run", 60.0) is not None

    held = Retention(store.engine, policy()).run(NOW)

    assert held.folded == 0 and not held.finished
    assert held.held_by == "another-run"
    leases.release("retention", "another-run")
    report = Retention(store.engine, policy()).run(NOW)
    assert report.folded > 0 and report.finished and report.held_by is None
    assert leases.hold("retention", "another-run", 60.0) is not None  # released at its end


def test_the_retention_budget_fits_the_stage_soft_limit_for_a_short_visibility(tmp_path):
    from selfmend.config import Settings
    from selfmend.system import System
    from workers.app import STAGES
    from workers.limits import stage_limits

    settings = Settings(
        home=tmp_path / "home",
        visibility_timeout_seconds=60.0,
        settle_seconds=0.5,
        verify_window_seconds=1.0,
    )
    system = System.from_settings(settings)
    try:
        budget = system.retention.policy.budget_seconds
    finally:
        system.store.close()

    assert budget <= 0.8 * stage_limits(settings, STAGES)["retention"].soft


def test_live_settings_no_application_read_within_their_hours_are_pruned(store):
    with store.engine.begin() as connection:
        store.settings_read.record(
            [(["db.pool_size"], NOW - 50 * HOURS), (["cache.warm"], NOW - 10 * HOURS)], connection
        )

    report = Retention(store.engine, policy(settings_read_hours=48)).run(NOW)

    assert report.deleted["settings_read"] == 1
    assert store.settings_read.last_read("db.pool_size") is None
    assert store.settings_read.last_read("cache.warm") == NOW - 10 * HOURS


def test_a_setting_is_kept_as_long_as_set_control_looks_back_for_its_read(tmp_path):
    from selfmend.config import Settings
    from selfmend.system import System

    settings = Settings(
        store_url=f"sqlite:///{tmp_path}/store.db",
        event_retention_hours=12,
        control_read_lookback_hours=36,
    )
    system = System.from_settings(settings)
    try:
        assert system.retention.policy.settings_read_hours == 36
    finally:
        system.store.close()
