"""Composite, rate and log patterns through the real analyze → remediate → verify path, on a
SQLite store."""

import time
import tomllib

import pytest

from selfmend.config import Settings
from selfmend.detect.pattern_file import parse_patterns
from selfmend.models import IncidentStatus, LogEvent, Sample
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change

PATTERNS = parse_patterns(
    tomllib.loads("""
[[patterns]]
name = "orders_stalled"
severity = "high"
condition = { kind = "all", of = [
    { series = "shop.orders_pending", aggregate = "min", window = 20, op = ">", threshold = 10 },
    { series = "shop.workers_busy", aggregate = "max", window = 20, op = "<", threshold = 1 },
] }
action = { name = "set_control", params = { key = "shop.drain", value = true } }
why = "drain: orders wait and no worker is busy."

[[patterns]]
name = "deadlocks"
severity = "medium"
condition = { series = "postgres.deadlocks_total", aggregate = "rate", window = 20, op = ">", \
threshold = 0 }
why = "fix_lock_order: the database broke a deadlock."

[[patterns]]
name = "deadlock_detected"
severity = "medium"
condition = { kind = "log", regex = "deadlock detected", window = 60 }
why = "fix_lock_order: PostgreSQL aborted a transaction to break a deadlock."
"""),
    "test patterns",
)


@pytest.fixture
def system(tmp_path):
    settings = Settings(
        home=tmp_path, mode="auto", settle_seconds=1, verify_window_seconds=5, cooldown_seconds=0
    )
    system = System.from_settings(settings, patterns=PATTERNS)
    app_reads_what_its_fixes_change(system)
    return system


def record(system: System, series: str, values: list[float], start: float, **labels: str) -> None:
    system.store.samples.insert(
        [
            Sample(series=series, ts=start + index, value=value, labels=labels)
            for index, value in enumerate(values)
        ]
    )


def test_composite_pattern_opens_its_incident_on_the_first_series_and_its_fix_is_verified(system):
    now = time.time()
    record(system, "shop.orders_pending", [30.0] * 20, now - 19, shop="eu")
    record(system, "shop.workers_busy", [0.0] * 20, now - 19, shop="eu")

    report = system.analyzer.run(now)
    [incident_id] = report.new_incidents
    incident = system.store.incidents.get(incident_id)
    assert (incident.pattern, incident.target) == (
        "orders_stalled",
        'shop.orders_pending{shop="eu"}',
    )

    remediation = system.executor.remediate(incident_id)
    assert remediation.applied
    assert system.store.controls.get("shop.drain") is True
    record(system, "shop.orders_pending", [2.0] * 8, remediation.applied_at + 1, shop="eu")
    judgement = system.verifier.verify(remediation, now=remediation.applied_at + 10)

    assert judgement.verdict == "fixed"
    assert judgement.after["values"] == {"min(shop.orders_pending, 20s) > 10": 2.0}
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED


def test_composite_pattern_stays_quiet_while_a_worker_is_busy(system):
    now = time.time()
    record(system, "shop.orders_pending", [30.0] * 20, now - 19, shop="eu")
    record(system, "shop.workers_busy", [0.0] * 10 + [3.0] * 10, now - 19, shop="eu")

    assert [m.pattern.name for m in system.analyzer.matches(now)] == []


def test_rate_pattern_fires_when_the_counter_grows(system):
    now = time.time()
    record(system, "postgres.deadlocks_total", [4.0] * 10 + [5.0] * 10, now - 19, database="shop")

    [match] = system.analyzer.matches(now)

    assert (match.pattern.name, match.target) == (
        "deadlocks",
        'postgres.deadlocks_total{database="shop"}',
    )
    assert match.value == pytest.approx(1 / 19)


def test_log_pattern_matches_error_lines_by_regular_expression_ignoring_case(system):
    now = time.time()
    system.store.samples.insert_logs(
        [
            LogEvent(ts=now - 5, level="ERROR", message="psycopg: DEADLOCK DETECTED in orders"),
            LogEvent(ts=now - 4, level="WARNING", message="deadlock detected, retrying"),
            LogEvent(ts=now - 3, level="ERROR", message="connection reset by peer"),
            LogEvent(ts=now - 90, level="ERROR", message="deadlock detected long ago"),
        ]
    )

    [match] = system.analyzer.matches(now)

    assert (match.pattern.name, match.value) == ("deadlock_detected", 1.0)
    assert match.evidence["lines"] == ["psycopg: DEADLOCK DETECTED in orders"]
