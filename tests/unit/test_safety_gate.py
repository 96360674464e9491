"""The safety gate past one incident: caps on concurrent remediations and on actions per hour,
held-back remediations tried again, approval requests that expire. Each decision is an audit
row with its reason. The real remediate → verify path and backlog on a SQLite store."""

import time

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.errors import InvalidInput
from selfmend.models import ExecutionState, IncidentStatus, Risk, Severity
from selfmend.remedy.approvals import approve
from selfmend.remedy.executor import Remediation
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from tests.at_once import remediate_at_once
from tests.unit.shop import DiesApplying


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
    system = System.from_settings(Settings(**{**defaults, **settings}), patterns=PATTERNS)
    app_reads_what_its_fixes_change(system)
    return system


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
    outcomes = list(remediate_at_once(system, incidents).values())

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


def deadly_system(tmp_path, **settings) -> System:
    """A system whose one pattern's fix kills the worker applying it."""
    deadly = Pattern(
        name="deadly",
        condition=PATTERNS[0].condition,
        severity=Severity.MEDIUM,
        actions=(ActionSpec(name="dies_applying"),),
        why="test",
    )
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0, **settings)
    return System.from_settings(settings, patterns=(deadly,), action_factories=(DiesApplying,))


def test_an_apply_that_kills_its_worker_is_escalated_after_three_lost_deliveries(tmp_path):
    system = deadly_system(tmp_path)
    incident_id = open_incident(system, "deadly")

    for _ in range(4):  # the first delivery and three redeliveries, each worker lost
        with pytest.raises(SystemExit):
            system.executor.remediate(incident_id)
    escalated = system.executor.remediate(incident_id)

    assert escalated.decision == "escalated"
    assert "was lost 4 times" in escalated.reason
    assert len(reasons(system, incident_id, ExecutionState.RESUMED)) == 3


def test_an_incident_whose_remediate_message_was_lost_is_sent_again(tmp_path):
    system = build(tmp_path)
    stranded = open_incident(system, "fault_0")  # analyze sent remediate; the broker lost it
    waiting = open_incident(system, "fault_1")
    system.store.executions.record(
        incident_id=waiting,
        action="set_control",
        target="fault_1",
        state=ExecutionState.SKIPPED,
        risk=Risk.LOW,
        actor="test",
        reason="cooldown",
        once=False,
    )

    assert system.backlog.sweep(time.time()).stranded == []  # its message may still be queued
    due = system.backlog.sweep(time.time() + 61)

    assert due.stranded == [stranded]  # the held-back one is the retry rule's, not this one's
    assert due.retried == [waiting]
    assert set(due.to_remediate) == {stranded, waiting}  # what analyze sends remediate for
    assert system.executor.remediate(stranded).decision == "applied"
    assert system.backlog.sweep(time.time() + 61).stranded == []


def test_an_applied_fix_whose_verification_was_lost_is_verified_again(tmp_path):
    system = build(tmp_path, settle_seconds=1, verify_window_seconds=2, verify_min_samples=1)
    incident_id = open_incident(system, "fault_0")
    applied = system.executor.remediate(incident_id)  # the verify message is then lost
    overdue = applied.applied_at + system.verifier.longest_wait + 60

    assert system.verifier.longest_wait == 1 + 3 * 2
    assert system.backlog.sweep(overdue - 1).unverified == []  # it may still be verifying
    [sent_again] = system.backlog.sweep(overdue + 1).unverified

    assert sent_again["execution_id"] == applied.execution_id
    assert sent_again["applied_at"] == applied.applied_at
    judged = system.verifier.verify(Remediation(**sent_again), now=overdue + 1)
    assert judged.verdict == "not_fixed"  # no sample came, so nothing shows it fixed
    assert system.store.incidents.get(incident_id).status is not IncidentStatus.VERIFYING
    assert system.backlog.sweep(overdue + 1).unverified == []


def test_a_claimed_incident_whose_message_was_lost_resumes_after_the_redelivery_time(tmp_path):
    system = deadly_system(tmp_path, retry_seconds=60)
    incident_id = open_incident(system, "deadly")
    with pytest.raises(SystemExit):  # claimed, then the worker died; its message is lost too
        system.executor.remediate(incident_id)
    redelivered = time.time() + system.settings.visibility_timeout_seconds

    assert system.store.incidents.get(incident_id).status is IncidentStatus.REMEDIATING
    assert system.backlog.sweep(redelivered).stranded == []  # the broker's redelivery comes first
    assert system.backlog.sweep(redelivered + 61).stranded == [incident_id]
    with pytest.raises(SystemExit):
        system.executor.remediate(incident_id)  # resumed from the claim, not claimed again
    assert len(reasons(system, incident_id, ExecutionState.RESUMED)) == 1
