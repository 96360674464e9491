"""The caps under real concurrency on PostgreSQL: workers claiming at the same instant, in
threads with connections of their own, never take more slots than the cap allows."""

from __future__ import annotations

import threading

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import Severity
from selfmend.store import Store
from selfmend.system import System
from tests.resources import fresh_database

pytestmark = pytest.mark.integration

INCIDENTS = 24


def fault(index: int) -> Pattern:
    return Pattern(
        name=f"fault_{index}",
        condition=MetricCondition(
            series=f"app.fault_{index}", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.MEDIUM,
        actions=(ActionSpec(name="set_control", params={"key": f"fault_{index}", "value": 1}),),
        why="test",
    )


@pytest.fixture
def system(tmp_path):
    store_url = fresh_database("claims")
    Store.from_url(store_url, migrate=True).close()  # as `selfmend db upgrade`
    settings = Settings(
        home=tmp_path,
        store_url=store_url,
        mode="auto",
        cooldown_seconds=0,
        max_concurrent_remediations=3,
        max_actions_per_hour=1000,
    )
    built = System.from_settings(settings, patterns=tuple(fault(i) for i in range(INCIDENTS)))
    yield built
    built.store.close()


def test_concurrent_claims_on_postgresql_take_exactly_the_capped_slots(system):
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
    decisions: list[str] = []

    def remediate(incident_id: int) -> None:
        start.wait()
        decisions.append(system.executor.remediate(incident_id).decision)

    threads = [threading.Thread(target=remediate, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(decisions) == ["applied"] * 3 + ["skipped"] * (INCIDENTS - 3)
    assert sum(system.store.controls.get(f"fault_{i}") == 1 for i in range(INCIDENTS)) == 3
