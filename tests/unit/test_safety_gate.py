"""The safety gate past one incident: caps on concurrent remediations and on actions per hour,
held-back remediations tried again, approval requests that expire. Each decision is an audit
row with its reason. The real remediate → verify path and backlog on a SQLite store."""

import threading
import time

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.errors import InvalidInput
from selfmend.models import ExecutionState, IncidentStatus, Risk, Severity
from selfmend.remedy.approvals import approve
from selfmend.remedy.base import Plan
from selfmend.system import System


def pattern(name: str, risk: str | None = None) -> Pattern:
    return Pattern(
        name=name,
        condition=MetricCondition(
            series=f"app.{name}", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(ActionSpec(name="set_control", params={"key": name, "value": True}, risk=risk),),
        why="test",
    )


PATTERNS = (*(pattern(f"fault_{index}") for index in range(8)), pattern("risky", "high"))


def build(tmp_path, **settings) -> System:
    defaults = dict(home=tmp_path, mode="auto", cooldown_seconds=0, retry_seconds=60)
    return System.from_settings(Settings(**{**defaults, **settings}), patterns=PATTERNS)


def open_incident(system: System, name: str) -> int:
    incident, _ = system.store.incidents.open(
        pattern=name,
        target=f"app.{name}",
        severity=Severity.MEDIUM,
        series_key=f"app.{name}",
        root_cause=name,
        evidence={},
    )
    return incident.id


def reasons(system: System, incident_id: int, state: ExecutionState) -> list[str]:
    return [e.reason for e in system.store.executions.history(incident_id) if e.state is state]


def test_a_remediation_over_the_concurrency_cap_is_held_back_and_tried_again(tmp_path):
    system = build(tmp_path, max_concurrent_remediations=1)
    first, second = open_incident(system, "fault_0"), open_incident(system, "fault_1")

    assert system.executor.remediate(first).decision == "applied"  # now verifying
    held = system.executor.remediate(second)

    assert held.decision == "skipped"
    assert reasons(system, second, ExecutionState.SKIPPED) == [
        "cap: 1 other remediations in flight (SELFMEND_MAX_CONCURRENT_REMEDIATIONS=1)"
    ]
    assert system.store.incidents.get(second).status is IncidentStatus.OPEN
    assert system.store.controls.get("fault_1") is None
    assert system.backlog.sweep(time.time()).retried == []  # not before retry_seconds

    system.store.incidents.advance(first, [IncidentStatus.VERIFYING], IncidentStatus.RESOLVED)
    assert system.backlog.sweep(time.time() + 61).retried == [second]
    assert system.executor.remediate(second).decision == "applied"


def test_no_more_actions_than_the_hourly_cap_are_applied(tmp_path):
    system = build(tmp_path, max_actions_per_hour=2)
    decisions = [system.executor.remediate(open_incident(system, f"fault_{i}")) for i in range(3)]
    for remediation in decisions[:2]:  # their verification is over
        system.store.incidents.advance(
            remediation.incident_id, [IncidentStatus.VERIFYING], IncidentStatus.RESOLVED
        )

    assert [d.decision for d in decisions] == ["applied", "applied", "skipped"]
    assert "cap: 2 actions applied in the last hour" in decisions[2].reason


@pytest.mark.parametrize("cap", [1, 3])
def test_workers_claiming_at_once_never_exceed_the_concurrency_cap(tmp_path, cap):
    system = build(tmp_path, max_concurrent_remediations=cap)
    incidents = [open_incident(system, f"fault_{i}") for i in range(8)]
    start = threading.Barrier(len(incidents))
    outcomes: list[str] = []

    def remediate(incident_id: int) -> None:
        start.wait()
        outcomes.append(system.executor.remediate(incident_id).decision)

    threads = [threading.Thread(target=remediate, args=(i,)) for i in incidents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["applied"] * cap + ["skipped"] * (8 - cap)
    applied = [k for k in (f"fault_{i}" for i in range(8)) if system.store.controls.get(k)]
    assert len(applied) == cap


def test_a_kill_switched_remediation_is_tried_again_once_the_switch_is_off(tmp_path):
    system = build(tmp_path)
    system.store.controls.set_kill_switch(True, scope="set_control", actor="ops", reason="test")
    incident_id = open_incident(system, "fault_0")

    assert system.executor.remediate(incident_id).decision == "skipped"
    system.store.controls.set_kill_switch(False, scope="set_control", actor="ops", reason="ok")

    assert system.backlog.sweep(time.time() + 61).retried == [incident_id]
    assert system.executor.remediate(incident_id).decision == "applied"


def test_an_approval_request_nobody_answers_expires_and_escalates(tmp_path):
    system = build(tmp_path, approval_timeout_seconds=30)
    incident_id = open_incident(system, "risky")
    assert system.executor.remediate(incident_id).decision == "awaiting_approval"

    later = time.time() + 31
    due = system.backlog.sweep(later)

    assert due.expired == [incident_id]
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ESCALATED
    assert reasons(system, incident_id, ExecutionState.SKIPPED) == [
        "nobody approved set_control on risky within 30 s"
    ]


def test_an_expired_request_cannot_be_approved(tmp_path):
    system = build(tmp_path)
    incident_id = open_incident(system, "risky")
    system.executor.remediate(incident_id)

    with pytest.raises(InvalidInput, match="no longer stands"):
        approve(system.store, incident_id, actor="ops", timeout_seconds=0)
    approve(system.store, incident_id, actor="ops", timeout_seconds=3600)
    assert system.backlog.sweep(time.time()).approved == [incident_id]


class DiesApplying:
    """An action whose apply takes its process down, as an out-of-memory kill would."""

    name = "dies_applying"
    risk = Risk.LOW
    reversible = True

    def __init__(self, store) -> None:
        pass

    def plan(self, params):
        return Plan(self.name, "host", params, {}, "something heavy")

    def apply(self, plan):
        raise SystemExit("killed")

    def rollback(self, plan):
        return {"changed": False}


def test_an_apply_that_kills_its_worker_is_escalated_after_three_lost_deliveries(tmp_path):
    deadly = Pattern(
        name="deadly",
        condition=PATTERNS[0].condition,
        severity=Severity.MEDIUM,
        actions=(ActionSpec(name="dies_applying"),),
        why="test",
    )
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0)
    system = System.from_settings(settings, patterns=(deadly,), action_factories=(DiesApplying,))
    incident_id = open_incident(system, "deadly")

    for _ in range(4):  # the first delivery and three redeliveries, each worker lost
        with pytest.raises(SystemExit):
            system.executor.remediate(incident_id)
    escalated = system.executor.remediate(incident_id)

    assert escalated.decision == "escalated"
    assert "was lost 4 times" in escalated.reason
    assert len(reasons(system, incident_id, ExecutionState.RESUMED)) == 3
