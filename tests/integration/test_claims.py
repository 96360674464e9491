"""Claims under real concurrency on PostgreSQL: workers remediating at the same instant, in
threads with connections of their own, never take more slots than the caps allow, and patterns
whose fix is the same action on the same target apply it once within the cooldown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import ExecutionState, Severity
from selfmend.store import Store
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from tests.at_once import remediate_at_once
from tests.resources import fresh_database

pytestmark = pytest.mark.integration

SHARED = ActionSpec(name="set_control", params={"key": "shop.drain", "value": True})


def fault(index: int, fix: ActionSpec | None = None) -> Pattern:
    """A pattern on its own series; its fix sets its own key unless ``fix`` is shared."""
    own = ActionSpec(name="set_control", params={"key": f"fault_{index}", "value": 1})
    return Pattern(
        name=f"fault_{index}",
        condition=MetricCondition(
            series=f"app.fault_{index}", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(fix or own,),
        why="test",
    )


@pytest.fixture
def build(tmp_path) -> Iterator:
    built: list[System] = []

    def system(patterns: tuple[Pattern, ...], **settings) -> System:
        store_url = fresh_database("claims")
        Store.from_url(store_url, migrate=True).close()  # as `selfmend db upgrade`
        defaults = dict(home=tmp_path, store_url=store_url, mode="auto", max_actions_per_hour=1000)
        built.append(System.from_settings(Settings(**{**defaults, **settings}), patterns=patterns))
        app_reads_what_its_fixes_change(built[-1])
        return built[-1]

    yield system
    for system in built:
        system.store.close()


def open_incidents(system: System, count: int) -> list[int]:
    """An incident for each of the patterns ``fault_0`` …"""
    return [
        system.store.incidents.open(
            pattern=f"fault_{i}",
            target=f"app.fault_{i}",
            severity=Severity.MEDIUM,
            series_key=f"app.fault_{i}",
            root_cause="test",
            evidence={},
        )[0].id
        for i in range(count)
    ]


def test_concurrent_claims_on_postgresql_take_exactly_the_capped_slots(build):
    incidents = 24
    patterns = tuple(fault(i) for i in range(incidents))
    system = build(patterns, cooldown_seconds=0, max_concurrent_remediations=3)

    decisions = remediate_at_once(system, open_incidents(system, incidents))

    assert sorted(decisions.values()) == ["applied"] * 3 + ["skipped"] * (incidents - 3)
    assert sum(system.store.controls.get(f"fault_{i}") == 1 for i in range(incidents)) == 3


def test_patterns_sharing_a_fix_apply_it_once_within_the_cooldown_on_postgresql(build):
    incidents = 12
    patterns = tuple(fault(i, SHARED) for i in range(incidents))
    system = build(patterns, cooldown_seconds=600, max_concurrent_remediations=incidents)

    decisions = remediate_at_once(system, open_incidents(system, incidents))

    assert sorted(decisions.values()) == ["applied"] + ["skipped"] * (incidents - 1)
    for incident_id, decision in decisions.items():
        if decision == "skipped":
            [held] = [
                e.reason
                for e in system.store.executions.history(incident_id)
                if e.state is ExecutionState.SKIPPED
            ]
            assert held.startswith(("cooldown: set_control on shop.drain", "in flight:")), held
