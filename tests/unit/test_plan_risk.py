"""A plan may raise its action's risk (an index on a big table): the gate reads the plan's risk,
and the plan's risk never lowers the action's (SQLite store, no servers)."""

from __future__ import annotations

from typing import Any

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import ExecutionState, Risk, Severity
from selfmend.remedy.approvals import approve
from selfmend.remedy.base import Plan
from selfmend.system import System


class BuildIndex:
    """Medium risk, but high in the plan of a table bigger than ``big_above`` rows."""

    name = "build_index"
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, store) -> None:
        pass

    def plan(self, params: dict[str, Any]) -> Plan:
        big = params["rows"] > 1000
        return Plan(self.name, "db", params, {}, "build it", Risk.HIGH if big else Risk.LOW)

    def apply(self, plan: Plan) -> dict[str, Any]:
        return {"changed": True}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": True}


def system_with(tmp_path, rows: int) -> System:
    pattern = Pattern(
        name="scans",
        condition=MetricCondition(
            series="db.scans", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(ActionSpec(name="build_index", params={"rows": rows}),),
        why="test",
    )
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0)
    return System.from_settings(settings, patterns=(pattern,), action_factories=(BuildIndex,))


def open_incident(system: System) -> int:
    incident, _ = system.store.incidents.open(
        pattern="scans",
        target="db.scans",
        severity=Severity.MEDIUM,
        series_key="db.scans",
        root_cause="scans",
        evidence={},
    )
    return incident.id


def test_a_plan_that_raises_the_risk_waits_for_a_person_in_auto_mode(tmp_path):
    system = system_with(tmp_path, rows=1_000_000)
    incident_id = open_incident(system)

    waiting = system.executor.remediate(incident_id)

    assert waiting.decision == "awaiting_approval"
    assert waiting.reason == "high risk needs a person's approval"
    approve(system.store, incident_id, actor="ops", timeout_seconds=3600)
    assert system.executor.remediate(incident_id).decision == "applied"
    (applied,) = [
        e for e in system.store.executions.history(incident_id) if e.state is ExecutionState.APPLIED
    ]
    assert applied.risk is Risk.HIGH


def test_a_plan_never_lowers_the_actions_risk(tmp_path):
    system = system_with(tmp_path, rows=10)
    incident_id = open_incident(system)

    assert system.executor.remediate(incident_id).decision == "applied"
    risks = {e.risk for e in system.store.executions.history(incident_id)}
    assert risks == {Risk.MEDIUM}
