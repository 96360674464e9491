"""The cooldown and an apply in flight hold a remediation back inside the claim, under the claim's
lock, not only in the gate's earlier read: two patterns whose fix is the same action on the same
target never both apply it within the cooldown. The real remediate path on SQLite."""

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import ExecutionState, IncidentStatus, Severity
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from tests.at_once import remediate_at_once
from tests.unit.shop import DiesApplying


def pattern(name: str, action: ActionSpec) -> Pattern:
    return Pattern(
        name=name,
        condition=MetricCondition(
            series=f"app.{name}", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(action,),
        why="test",
    )


SHARED = ActionSpec(name="set_control", params={"key": "shop.drain", "value": True})
PATTERNS = tuple(pattern(f"fault_{index}", SHARED) for index in range(6))


def build(tmp_path, patterns=PATTERNS, **settings) -> System:
    defaults = dict(home=tmp_path, mode="auto", cooldown_seconds=600, retry_seconds=60)
    system = System.from_settings(
        Settings(**{**defaults, **settings}), patterns=patterns, action_factories=(DiesApplying,)
    )
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


def skipped(system: System, incident_id: int) -> list[str]:
    history = system.store.executions.history(incident_id)
    return [e.reason for e in history if e.state is ExecutionState.SKIPPED]


def test_a_cooldown_read_before_another_pattern_applied_still_holds_the_second_back(tmp_path):
    system = build(tmp_path)
    first, second = open_incident(system, "fault_0"), open_incident(system, "fault_1")
    read_gate = system.store.gate.read

    def read_then_the_other_applies(action: str, target: str):
        reading = read_gate(action, target)  # nothing applied yet: the cooldown does not hold
        system.store.gate.read = read_gate
        assert system.executor.remediate(first).decision == "applied"
        return reading

    system.store.gate.read = read_then_the_other_applies
    held = system.executor.remediate(second)

    assert held.decision == "skipped"
    assert held.reason.startswith("cooldown: set_control on shop.drain ran 0 s ago")
    assert skipped(system, second) == [held.reason]
    assert system.store.incidents.get(second).status is IncidentStatus.OPEN
    assert system.backlog.sweep(system.store.incidents.get(second).updated_at + 61).retried == [
        second
    ]


def test_an_apply_in_flight_holds_back_the_same_action_on_the_same_target(tmp_path):
    dies = ActionSpec(name="dies_applying")
    system = build(tmp_path, patterns=(pattern("first", dies), pattern("second", dies)))
    first, second = open_incident(system, "first"), open_incident(system, "second")
    with pytest.raises(SystemExit):
        system.executor.remediate(first)  # claimed; its worker died applying

    held = system.executor.remediate(second)

    assert held.decision == "skipped"
    assert held.reason == f"in flight: dies_applying on host is being applied for incident {first}"
    assert system.store.incidents.get(second).status is IncidentStatus.OPEN


def test_an_apply_in_flight_holds_even_with_no_cooldown(tmp_path):
    dies = ActionSpec(name="dies_applying")
    patterns = (pattern("first", dies), pattern("second", dies))
    system = build(tmp_path, patterns=patterns, cooldown_seconds=0)
    first, second = open_incident(system, "first"), open_incident(system, "second")
    with pytest.raises(SystemExit):
        system.executor.remediate(first)

    assert system.executor.remediate(second).decision == "skipped"


def test_patterns_claiming_the_same_fix_at_once_apply_it_once_within_the_cooldown(tmp_path):
    system = build(tmp_path)
    incidents = [open_incident(system, f"fault_{i}") for i in range(len(PATTERNS))]
    decisions = list(remediate_at_once(system, incidents).values())

    assert sorted(decisions) == ["applied"] + ["skipped"] * (len(incidents) - 1)
