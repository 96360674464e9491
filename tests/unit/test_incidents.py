"""Signals become incidents: related ones grouped, root cause ranked, flapping escalated."""

import time
import tomllib

import numpy as np
import pytest

from selfmend.config import Settings
from selfmend.detect.correlate import layer, rank, related
from selfmend.detect.pattern_file import parse_patterns
from selfmend.models import ExecutionState, IncidentStatus, Risk, Sample, Severity
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change

PATTERNS = parse_patterns(
    tomllib.loads("""
[[patterns]]
name = "pool_exhausted"
severity = "high"
condition = { series = "db.pool_in_use", aggregate = "min", window = 20, op = ">", threshold = 90 }
action = { name = "set_control", params = { key = "db.pool_size", value = 120 } }
why = "grow the pool: every connection is taken."
"""),
    "test patterns",
)

DB = 'postgres.wait_ms{database="shop"}'
API = 'app.latency_ms{service="shop"}'


def test_series_are_related_through_their_component_or_a_label_value():
    assert related(API, DB)
    assert related("redis.memory", 'redis.clients{instance="a"}')
    assert not related("redis.memory", API)
    assert layer(DB) < layer("redis.memory") < layer("celery.queue_depth") < layer("http.p95")


def test_root_cause_is_the_earliest_onset_with_a_head_start_for_lower_layers():
    api_first = {"target": API, "onset": 1000.0}
    db_a_little_later = {"target": DB, "onset": 1030.0}
    assert rank([api_first, db_a_little_later], tolerance=60)[0] is db_a_little_later
    db_much_later = {"target": DB, "onset": 1600.0}
    assert rank([api_first, db_much_later], tolerance=60)[0] is api_first


@pytest.fixture
def system(tmp_path):
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0)
    system = System.from_settings(settings, patterns=PATTERNS)
    app_reads_what_its_fixes_change(system)
    return system


def feed(system: System, name: str, labels: dict[str, str], spike_at: int, stays: bool = False):
    """300 one-second points of noise ending now, with a spike at ``spike_at`` that ``stays``."""
    start = time.time() - 300
    values = np.random.default_rng(len(name)).normal(50, 1, 300)
    values[spike_at : None if stays else spike_at + 1] = 500.0
    system.store.samples.insert(
        [
            Sample(series=name, ts=start + i, value=float(v), labels=labels)
            for i, v in enumerate(values)
        ]
    )


def test_anomalies_on_related_series_become_one_incident_led_by_the_database(system):
    feed(system, "app.latency_ms", {"service": "shop"}, spike_at=280, stays=True)
    feed(system, "postgres.wait_ms", {"database": "shop"}, spike_at=285, stays=True)
    feed(system, "redis.memory", {}, spike_at=290, stays=True)
    report = system.analyzer.run()
    assert len(report.new_incidents) == 2  # the shop's two series, and redis on its own
    grouped = system.store.incidents.get(report.new_incidents[0])
    assert [m["target"] for m in grouped.evidence["members"]] == [DB, API]
    assert grouped.target == DB
    assert grouped.root_cause.endswith(f"on {DB}")
    assert system.store.incidents.get(report.new_incidents[1]).target == "redis.memory"


def test_a_symptom_arriving_later_joins_the_open_incident_and_is_ranked(system):
    feed(system, "postgres.wait_ms", {"database": "shop"}, spike_at=250, stays=True)
    first = system.analyzer.run()
    feed(system, "app.latency_ms", {"service": "shop"}, spike_at=290, stays=True)
    second = system.analyzer.run()
    assert second.new_incidents == [] and second.grouped == first.new_incidents
    incident = system.store.incidents.get(first.new_incidents[0])
    assert [m["target"] for m in incident.evidence["members"]] == [DB, API]
    third = system.analyzer.run()  # nothing new: the open incident is neither reopened nor grown
    assert third.new_incidents == [] and third.grouped == []


def test_a_spike_the_series_recovers_from_is_stored_but_opens_no_incident(system):
    feed(system, "app.latency_ms", {"service": "shop"}, spike_at=250)
    report = system.analyzer.run()
    assert report.anomalies >= 1
    assert report.new_incidents == []


def test_an_alarm_at_the_end_of_a_pass_is_settled_by_the_next_pass(system):
    now = time.time()
    values = [*np.random.default_rng(5).normal(50, 1, 299), 500.0]  # the alarm is the last point
    system.store.samples.insert(
        [
            Sample(series="app.latency_ms", ts=now - 300 + i, value=float(v))
            for i, v in enumerate(values)
        ]
    )
    assert system.analyzer.run(now=now).new_incidents == []  # pending: one point says little
    system.store.samples.insert(
        [Sample(series="app.latency_ms", ts=now + 1 + i, value=510.0) for i in range(5)]
    )
    assert len(system.analyzer.run(now=now + 6).new_incidents) == 1  # it held: a real change


def test_a_signal_with_its_own_fix_is_not_swallowed_by_a_related_incident(system):
    feed(system, "app.latency_ms", {"service": "shop"}, spike_at=250, stays=True)
    first = system.analyzer.run()
    now = time.time()
    pool = [
        Sample(series="db.pool_in_use", ts=now - 20 + i, value=95.0, labels={"service": "shop"})
        for i in range(20)
    ]
    system.store.samples.insert(pool)
    second = system.analyzer.run(now=now)
    assert len(first.new_incidents) == len(second.new_incidents) == 1
    assert system.store.incidents.get(second.new_incidents[0]).pattern == "pool_exhausted"


def open_pool_incident(system: System, target: str, reopens_since: float = 0.0):
    return system.store.incidents.open(
        pattern="pool_exhausted",
        target=target,
        severity=Severity.HIGH,
        series_key=None,
        root_cause="pool exhausted",
        evidence={},
        reopens_since=reopens_since,
    )


def close(system: System, incident_id: int, *, fixed: bool) -> None:
    """Resolve an incident, after a fix was applied to it or with none (it cleared by itself)."""
    if fixed:
        system.store.executions.record(
            incident_id=incident_id,
            action="set_control",
            target="db.pool_size",
            state=ExecutionState.APPLIED,
            risk=Risk.LOW,
            actor="test",
            reason="applied",
        )
    assert system.store.incidents.advance(
        incident_id, [IncidentStatus.OPEN], IncidentStatus.RESOLVED
    )


def test_an_incident_that_keeps_reopening_is_escalated_instead_of_fixed_again(system):
    for _ in range(3):
        incident, created = open_pool_incident(system, "db")
        assert created
        still_open, created = open_pool_incident(system, "db")
        assert still_open.id == incident.id and not created  # an open incident is not reopened
        close(system, incident.id, fixed=True)
    flapping, _ = open_pool_incident(system, "db", reopens_since=time.time() - 3600)
    assert flapping.reopen_count == 3
    outcome = system.executor.remediate(flapping.id)
    assert outcome.decision == "escalated"
    assert "flapping" in outcome.reason
    assert system.store.incidents.get(flapping.id).status is IncidentStatus.ESCALATED
    assert system.store.executions.history(flapping.id)[-1].state.value == "skipped"


def test_incidents_that_cleared_with_no_fix_applied_are_no_flapping(system):
    """False alarms that cleared by themselves must not stop the fix of the real fault."""
    for _ in range(5):
        incident, _ = open_pool_incident(system, "db")
        close(system, incident.id, fixed=False)
    real, _ = open_pool_incident(system, "db", reopens_since=time.time() - 3600)
    assert real.reopen_count == 0
    assert system.executor.remediate(real.id).decision == "applied"


def test_reopens_before_the_flap_window_do_not_count(system):
    incident, _ = open_pool_incident(system, "db")
    close(system, incident.id, fixed=True)
    again, _ = open_pool_incident(system, "db", reopens_since=time.time())
    assert again.reopen_count == 0
    assert system.executor.remediate(again.id).decision != "escalated"
