"""The cooldown under real concurrency on PostgreSQL: patterns whose fix is the same action on
the same target, remediated by workers at the same instant in threads with connections of their
own, apply it once; every other is held back by the cooldown or the apply in flight, and said so
in its audit log. Uses the PostgreSQL server of ``tests.resources``."""

from __future__ import annotations

import threading

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import ExecutionState, Severity
from selfmend.store import Store
from selfmend.system import System
from tests.resources import fresh_database

pytestmark = pytest.mark.integration

INCIDENTS = 12
SHARED = ActionSpec(name="set_control", params={"key": "shop.drain", "value": True})


def fault(index: int) -> Pattern:
    return Pattern(
        name=f"fault_{index}",
        condition=MetricCondition(
            series=f"app.fault_{index}", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(SHARED,),
        why="test",
    )


@pytest.fixture
def system(tmp_path):
    url = fresh_database("claim_races")
    Store.from_url(url, migrate=True).close()  # the compose `migrate` job's part
    settings = Settings(
        home=tmp_path,
        store_url=url,
        mode="auto",
        cooldown_seconds=600,
        max_concurrent_remediations=INCIDENTS,
        max_actions_per_hour=1000,
    )
    built = System.from_settings(settings, patterns=tuple(fault(i) for i in range(INCIDENTS)))
    yield built
    built.store.close()


def test_patterns_sharing_a_fix_apply_it_once_within_the_cooldown_on_postgresql(system):
    ids = [
        system.store.incidents.open(
            pattern=f"fault_{i}",
            target=f"app.fault_{i}",
            severity=Severity.MEDIUM,
            series_key=f"app.fault_{i}",
            root_cause="test",
            evidence={},
        )[0].id
        for i in range(INCIDENTS)
    ]
    start = threading.Barrier(INCIDENTS)
    decisions: dict[int, str] = {}

    def remediate(incident_id: int) -> None:
        start.wait()
        decisions[incident_id] = system.executor.remediate(incident_id).decision

    threads = [threading.Thread(target=remediate, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(decisions.values()) == ["applied"] + ["skipped"] * (INCIDENTS - 1)
    for incident_id, decision in decisions.items():
        if decision == "skipped":
            [held] = [
                e.reason
                for e in system.store.executions.history(incident_id)
                if e.state is ExecutionState.SKIPPED
            ]
            assert held.startswith(("cooldown: set_control on shop.drain", "in flight:")), held
