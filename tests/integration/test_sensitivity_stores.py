"""Per-series sensitivity on real PostgreSQL: a key longer than a live setting's audited in full,
each shard reading only its own series' settings, and a pass applying them as on SQLite."""

from __future__ import annotations

import pytest

from selfmend.config import Settings
from selfmend.models import Sample, series_key
from selfmend.sensitivity import set_sensitivity
from selfmend.store import Store
from selfmend.store.sensitivities import KIND
from selfmend.system import System
from tests.resources import fresh_database
from tests.unit.test_sensitivity import (
    HISTORY,
    NAME,
    QUIET,
    SIBLING,
    START,
    calm,
    learned,
    spike_on,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path):
    url = fresh_database("sensitivity")
    Store.from_url(url, migrate=True).close()  # as `selfmend db upgrade`: workers wait for it
    system = System.from_settings(Settings(home=tmp_path, store_url=url), patterns=())
    yield system
    system.store.close()


def test_a_key_of_300_characters_is_set_and_audited_in_full(system):
    labels = {"route": "/" + "x" * 260, "service": "shop"}
    key = series_key("http.request_ms", labels)
    system.store.samples.insert(
        [Sample(series="http.request_ms", ts=START, value=1.0, labels=labels)]
    )

    set_sensitivity(system.store, key, 3.0, actor="ops", reason="slow routes matter")

    assert len(key) > 300
    assert system.store.sensitivities.get(key).sensitivity == 3.0
    [change] = system.store.controls.changes(key, kind=KIND)
    assert (change.key, change.old, change.new) == (key, None, 3.0)


def test_each_shard_reads_the_settings_of_its_own_series_only(system):
    system.store.samples.insert(
        [Sample(series=f"app.metric_{i}", ts=START, value=1.0) for i in range(6)]
    )
    ids = {cursor.key: cursor.id for cursor in system.store.samples.cursors()}
    for number, key in enumerate(sorted(ids)):
        set_sensitivity(system.store, key, 0.5 + number, actor="ops", reason="tuning")
    expected = {ids[key]: 0.5 + number for number, key in enumerate(sorted(ids))}

    shards = [system.store.sensitivities.of_shard(shard, 2) for shard in (0, 1)]

    assert shards[0] | shards[1] == expected
    assert all(id_ % 2 == shard for shard in (0, 1) for id_ in shards[shard])


def test_a_quiet_series_stops_alarming_on_postgresql_while_its_sibling_alarms(system):
    next_ts = calm(system, START, HISTORY, QUIET, SIBLING)
    set_sensitivity(system.store, series_key(NAME, QUIET), 0.1, actor="ops", reason="noisy")
    detector = learned(system, SIBLING)
    between = (detector.threshold + detector.threshold_at(0.1)) / 2

    assert spike_on(system, next_ts, between, QUIET, SIBLING) == {series_key(NAME, SIBLING)}
    assert learned(system, QUIET).to_state() == learned(system, SIBLING).to_state()
