"""Choosing the fix among a pattern's candidates by their learned success rate, and trying the
next when one fails verification: the real analyze → remediate → verify path on SQLite, with a
second action the way a user registers one."""

import pytest

from selfmend.config import Settings
from selfmend.detect.pattern_file import parse_patterns
from selfmend.detect.patterns import ActionSpec
from selfmend.errors import ActionError, ConfigurationError
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.base import with_labels
from selfmend.remedy.choice import ranked
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from tests.unit.shop import PATTERNS, RestartShop, fault, verify_with


def build(tmp_path, plannable: bool = True, patterns=PATTERNS) -> System:
    settings = Settings(
        home=tmp_path, mode="auto", settle_seconds=1, verify_window_seconds=5, cooldown_seconds=0
    )

    def restart_shop(store) -> RestartShop:
        return RestartShop(store, plannable=plannable)

    system = System.from_settings(settings, patterns=patterns, action_factories=(restart_shop,))
    app_reads_what_its_fixes_change(system)
    return system


def planned_reason(system: System, incident_id: int, action: str) -> str:
    history = system.store.executions.history(incident_id)
    return next(
        e.reason for e in history if e.state is ExecutionState.PLANNED and e.action == action
    )


def test_candidates_rank_by_success_rate_with_untried_at_even_odds_and_ties_in_order():
    drain, restart, scale = (ActionSpec(name=name) for name in ("drain", "restart", "scale"))
    counts = {"drain": (1, 3), "scale": (4, 1)}  # restart untried: 0.5

    order = [c.spec.name for c in ranked((drain, restart, scale), counts)]

    assert order == ["scale", "restart", "drain"]
    assert [c.spec.name for c in ranked((drain, restart), {})] == ["drain", "restart"]


def test_a_failed_fix_is_rolled_back_and_the_next_candidate_tried_then_learned(tmp_path):
    system = build(tmp_path)
    incident_id = fault(system)

    first = system.executor.remediate(incident_id)
    assert first.action == "set_control"
    assert "chosen: set_control: untried here, success rate 0.50" in planned_reason(
        system, incident_id, "set_control"
    )
    judged = verify_with(system, first, 30.0)  # still stuck
    assert (judged.verdict, judged.status) == ("not_fixed", "open")
    assert system.store.controls.get("shop.drain") is None  # rolled back

    assert system.analyze()["due"] == [incident_id]
    second = system.executor.remediate(incident_id)
    assert second.action == "restart_shop"
    assert verify_with(system, second, 2.0).status == "resolved"
    assert system.store.outcomes.counts("orders_stuck") == {
        "set_control": (0, 1),
        "restart_shop": (1, 0),
    }

    later = fault(system, now=second.applied_at + 30)  # again: what worked comes first
    assert system.executor.remediate(later).action == "restart_shop"
    assert "fixed 1 of 1 here, success rate 0.67" in planned_reason(system, later, "restart_shop")


def test_when_every_candidate_failed_the_incident_stays_rolled_back(tmp_path):
    system = build(tmp_path)
    incident_id = fault(system)
    for _ in range(2):
        judged = verify_with(system, system.executor.remediate(incident_id), 30.0)
    assert judged.status == "rolled_back"
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ROLLED_BACK
    assert system.store.controls.get("shop.restarted") is None


def test_a_candidate_that_cannot_be_planned_gives_way_to_the_next_at_once(tmp_path):
    (pattern,) = PATTERNS
    restart_first = pattern.model_copy(update={"actions": pattern.actions[::-1]})
    system = build(tmp_path, plannable=False, patterns=(restart_first,))

    remediation = system.executor.remediate(fault(system))

    assert remediation.action == "set_control"  # restart_shop came first, but failed to plan
    history = system.store.executions.history(remediation.incident_id)
    failed = [e for e in history if e.state is ExecutionState.FAILED]
    assert [(e.action, "does not answer" in e.reason) for e in failed] == [("restart_shop", True)]


def test_both_action_and_actions_or_a_repeated_candidate_are_refused():
    both = {"action": {"name": "a"}, "actions": [{"name": "b"}]}
    twice = {"actions": [{"name": "set_control"}, {"name": "set_control"}]}
    base = {
        "name": "p",
        "severity": "low",
        "why": "y",
        "condition": {"series": "s", "aggregate": "max", "window": 1, "op": ">", "threshold": 0},
    }
    with pytest.raises(ConfigurationError, match=r"give action \(one fix\) or actions"):
        parse_patterns({"patterns": [{**base, **both}]}, "f")
    with pytest.raises(ConfigurationError, match=r"actions: set_control is a candidate twice"):
        parse_patterns({"patterns": [{**base, **twice}]}, "f")


def test_a_label_placeholder_takes_the_incidents_label_and_a_missing_one_is_refused():
    target = 'postgres.longest_query_seconds{database="shop"}'
    params = {"database": "{database}", "older_than_seconds": 300, "note": "{not a label"}

    assert with_labels("pg_cancel_queries", params, target) == {
        "database": "shop",
        "older_than_seconds": 300,
        "note": "{not a label",
    }
    assert with_labels("celery_pool_restart", {"destination": ["{database}"]}, target) == {
        "destination": ["shop"]
    }
    with pytest.raises(ActionError, match=r"params.queue: .* has no label 'queue'"):
        with_labels("celery_pool", {"queue": "{queue}"}, target)
