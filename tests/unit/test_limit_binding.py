"""An action's bound may be the limit its incident crossed (``"{limit}"``): a stuck task is one
over its worker's learned usual, so the revoke stops tasks over that limit, not over a fixed
minute that may be another worker's habit (SQLite store, no servers)."""

from __future__ import annotations

from typing import Any

import pytest

from selfmend.config import Settings
from selfmend.detect.baseline import Learn
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.errors import ActionError
from selfmend.models import Risk, Severity
from selfmend.remedy.base import Plan, with_labels
from selfmend.system import System

TARGET = 'jobs.age{worker="reports@host"}'
CONDITION = MetricCondition(
    series="jobs.age", aggregate="min", window=30.0, op=">", learn=Learn(floor=60)
)


class StopOld:
    """Stops the tasks older than ``older_than_seconds`` on ``worker``; records what it saw."""

    name = "stop_old"
    risk = Risk.LOW
    reversible = False
    planned: list[dict[str, Any]] = []

    def __init__(self, store) -> None:
        pass

    def plan(self, params: dict[str, Any]) -> Plan:
        StopOld.planned.append(params)
        return Plan(self.name, params["worker"], params, {}, "stop them")

    def apply(self, plan: Plan) -> dict[str, Any]:
        return {"changed": True}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False}


def test_limit_and_labels_are_bound_from_the_incident():
    params = {"older_than_seconds": "{limit}", "worker": "{worker}", "most": 5}
    assert with_labels("stop_old", params, TARGET, limit=900.0) == {
        "older_than_seconds": 900.0,
        "worker": "reports@host",
        "most": 5,
    }


def test_a_limit_the_incident_did_not_record_is_a_clear_error():
    with pytest.raises(ActionError, match=r"stop_old: params\.older_than_seconds: .*no limit"):
        with_labels("stop_old", {"older_than_seconds": "{limit}"}, TARGET)


def test_the_pattern_reads_the_learned_limit_its_incident_recorded_else_its_threshold():
    pattern = Pattern(name="stuck", condition=CONDITION, severity=Severity.HIGH, why="test")
    evidence = {"limits": {CONDITION.describe(): {"limit": 900.0, "learned_limit": 900.0}}}
    assert pattern.recorded_limit(evidence) == 900.0
    hard = CONDITION.model_copy(update={"learn": None, "threshold": 300.0})
    assert pattern.model_copy(update={"condition": hard}).recorded_limit({}) == 300.0


def test_remediation_plans_with_the_limit_the_incident_crossed(tmp_path):
    pattern = Pattern(
        name="stuck",
        condition=CONDITION,
        severity=Severity.HIGH,
        actions=(
            ActionSpec(
                name="stop_old", params={"older_than_seconds": "{limit}", "worker": "{worker}"}
            ),
        ),
        why="test",
    )
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0)
    system = System.from_settings(settings, patterns=(pattern,), action_factories=(StopOld,))
    incident, _ = system.store.incidents.open(
        pattern="stuck",
        target=TARGET,
        severity=Severity.HIGH,
        series_key=TARGET,
        root_cause="stuck",
        evidence={"limits": {CONDITION.describe(): {"limit": 900.0, "learned_limit": 900.0}}},
    )
    StopOld.planned.clear()

    assert system.executor.remediate(incident.id).decision == "applied"
    assert StopOld.planned == [{"older_than_seconds": 900.0, "worker": "reports@host"}]
