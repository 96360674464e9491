"""A fix is credited only for a recovery it caused: not when it changed nothing, not when the
series was back before it, not when the series recovers as fast with no fix."""

import time
import tomllib
from typing import Any

from sqlalchemy import update

from selfmend.config import Settings
from selfmend.detect.pattern_file import parse_patterns
from selfmend.models import ExecutionState, IncidentStatus, Risk, Sample
from selfmend.remedy.base import Plan
from selfmend.store.tables import incidents
from selfmend.system import System

PATTERNS = parse_patterns(
    tomllib.loads("""
[[patterns]]
name = "queue_stuck"
severity = "high"
condition = { series = "shop.queue", aggregate = "min", window = 20, op = ">", threshold = 10 }
actions = [{ name = "drain_queue" }, { name = "page_someone" }]
why = "drain the queue, else a person."
"""),
    "test patterns",
)


class Drain:
    """A user's action whose apply reports whether it changed anything."""

    risk = Risk.LOW
    reversible = True

    def __init__(self, name: str, changed: bool) -> None:
        self.name = name
        self.changed = changed
        self.rollbacks = 0

    def plan(self, params: dict[str, Any]) -> Plan:
        return Plan(self.name, "shop", params, {}, f"{self.name} the shop's queue")

    def apply(self, plan: Plan) -> dict[str, Any]:
        return {"changed": self.changed}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        self.rollbacks += 1
        return {"changed": True}


def build(tmp_path, *, changed: bool = True) -> tuple[System, Drain]:
    settings = Settings(
        home=tmp_path, mode="auto", settle_seconds=1, verify_window_seconds=5, cooldown_seconds=0
    )
    drain = Drain("drain_queue", changed)
    actions = (lambda store: drain, lambda store: Drain("page_someone", True))
    return System.from_settings(settings, patterns=PATTERNS, action_factories=actions), drain


def queue(system: System, value: float, start: float, seconds: int) -> None:
    system.store.samples.insert(
        [Sample(series="shop.queue", ts=start + i, value=value) for i in range(seconds + 1)]
    )


def stuck(system: System, now: float) -> int:
    queue(system, 50.0, now - 20, 20)
    (incident_id,) = system.analyzer.run(now).new_incidents
    return incident_id


def hold_window(system: System, remediation, value: float):
    queue(system, value, remediation.applied_at + 1, 5)
    return system.verifier.verify(remediation, now=remediation.applied_at + 10)


def opened_ago(system: System, incident_id: int, seconds: float) -> None:
    """Time passes: the incident opened ``seconds`` ago, and no fix was applied since."""
    with system.store.engine.begin() as connection:
        connection.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(opened_at=time.time() - seconds)
        )


def counts(system: System) -> dict[str, tuple[int, int]]:
    return system.store.outcomes.counts("queue_stuck")


def test_a_fix_that_changed_nothing_is_not_credited_for_a_recovery(tmp_path):
    system, drain = build(tmp_path, changed=False)
    incident_id = stuck(system, time.time())
    remediation = system.executor.remediate(incident_id)
    assert remediation.decision == "applied"

    judged = hold_window(system, remediation, 2.0)  # the queue drained by itself

    assert (judged.verdict, judged.status) == ("uncredited", "resolved")
    assert "changed nothing" in judged.after["reason"]
    assert counts(system) == {}  # no evidence either way for the fix choice
    assert drain.rollbacks == 0  # nothing was changed, so nothing is undone
    states = [e.state for e in system.store.executions.history(incident_id)]
    assert ExecutionState.UNCREDITED in states and ExecutionState.VERIFIED not in states


def test_a_fix_that_changed_nothing_while_the_fault_stays_leaves_it_to_the_next_candidate(
    tmp_path,
):
    system, _ = build(tmp_path, changed=False)
    incident_id = stuck(system, time.time())
    remediation = system.executor.remediate(incident_id)

    judged = hold_window(system, remediation, 50.0)

    assert (judged.verdict, judged.status) == ("uncredited", "open")
    second = system.executor.remediate(incident_id)
    assert (second.decision, second.action) == ("applied", "page_someone")


def test_a_recovery_under_way_before_the_fix_is_not_credited_and_the_fix_is_undone(tmp_path):
    system, drain = build(tmp_path)
    now = time.time()
    incident_id = stuck(system, now - 30)
    opened_ago(system, incident_id, 30)
    queue(system, 2.0, now - 12, 12)  # back to normal before anyone applied anything

    remediation = system.executor.remediate(incident_id)
    judged = hold_window(system, remediation, 2.0)

    assert (judged.verdict, judged.status) == ("uncredited", "resolved")
    assert "before the fix" in judged.after["reason"]
    assert drain.rollbacks == 1
    assert counts(system) == {}


def test_a_recovery_as_fast_as_the_series_recovers_with_no_fix_is_not_credited(tmp_path):
    system, drain = build(tmp_path)
    store = system.store
    for _ in range(3):  # three earlier incidents that cleared by themselves within a second
        incident, _ = store.incidents.open(
            pattern="queue_stuck",
            target="shop.queue",
            severity="high",
            series_key="shop.queue",
            root_cause="stuck",
            evidence={},
        )
        assert store.incidents.advance(incident.id, [IncidentStatus.OPEN], IncidentStatus.RESOLVED)
    incident_id = stuck(system, time.time())
    remediation = system.executor.remediate(incident_id)

    judged = hold_window(system, remediation, 2.0)

    assert (judged.verdict, judged.status) == ("uncredited", "resolved")
    assert judged.after["credit"]["natural"] == 3
    assert drain.rollbacks == 1


def test_a_fix_that_caused_the_recovery_is_credited(tmp_path):
    system, drain = build(tmp_path)
    incident_id = stuck(system, time.time())
    remediation = system.executor.remediate(incident_id)

    judged = hold_window(system, remediation, 2.0)

    assert (judged.verdict, judged.status) == ("fixed", "resolved")
    assert counts(system) == {"drain_queue": (1, 0)}
    assert drain.rollbacks == 0
