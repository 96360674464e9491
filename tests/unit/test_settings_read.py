"""A fix through a live setting the application never reads is not chosen: the client reports
the keys its application reads, the collect stage stores them, and set_control refuses a key no
application read lately, so the next candidate is tried or a person gets the incident."""

import time

import pytest

from selfmend.client import Client
from selfmend.client.live import MAX_KEYS_NOTED, LiveSettings
from selfmend.client.quiet import QuietLog
from selfmend.config import Settings
from selfmend.errors import ActionError
from selfmend.models import ExecutionState, parse_batch
from selfmend.remedy.actions.set_control import SetControl
from selfmend.system import System
from tests.app_reads import app_reads
from tests.unit.shop import PATTERNS, RestartShop, fault

DAY = 24 * 3600.0


class Controls:
    def __init__(self) -> None:
        self.values: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, actor) -> None:
        self.values[key] = value


@pytest.fixture
def system(tmp_path):
    settings = Settings(home=tmp_path, mode="auto", cooldown_seconds=0)
    return System.from_settings(
        settings, patterns=PATTERNS, action_factories=(lambda store: RestartShop(store),)
    )


def test_the_keys_read_are_reported_when_new_and_again_only_after_the_interval():
    live = LiveSettings(Controls(), ttl=1.0, quiet=QuietLog(), report_every=0.2)
    assert live.keys_to_report() == []  # nothing read, nothing to say

    live.get("db.pool_size", 20)
    live.get("cache.warm", False)
    assert live.keys_to_report() == ["cache.warm", "db.pool_size"]
    live.get("db.pool_size", 20)
    assert live.keys_to_report() == []  # nothing new within the interval
    live.get("http.timeout", 5)
    # A new key goes at once, with the others read since the last report.
    assert live.keys_to_report() == ["db.pool_size", "http.timeout"]

    live.get("db.pool_size", 20)
    time.sleep(0.25)
    assert live.keys_to_report() == ["db.pool_size"]  # only what was read since


def test_the_keys_noted_between_reports_are_bounded():
    live = LiveSettings(Controls(), ttl=1.0, quiet=QuietLog())
    for number in range(MAX_KEYS_NOTED + 50):
        live.get(f"tenant.{number}", 0)
    assert len(live.keys_to_report()) == MAX_KEYS_NOTED


def test_a_report_is_validated_like_any_pushed_item():
    now = time.time()
    batch = parse_batch(
        [
            {"kind": "settings_read", "ts": now, "keys": ["db.pool_size"]},
            {"kind": "settings_read", "ts": now, "keys": [""]},
            {"kind": "settings_read", "ts": now + 3600, "keys": ["a"]},
        ],
        max_skew=300,
        now=now,
    )
    assert [read.keys for read in batch.settings_read] == [["db.pool_size"]]
    assert [(r.index, r.field) for r in batch.rejected] == [(1, "keys.0"), (2, "ts")]


def test_the_client_reports_what_its_application_reads_and_collect_stores_it(system):
    client = Client(system.settings, store=system.store)
    client.control("db.pool_size", 20)
    client.flag("checkout.v2")
    client.close()
    system.collect()

    for key in ("db.pool_size", "flag.checkout.v2"):
        assert time.time() - system.store.settings_read.last_read(key) < 60, key
    assert system.store.settings_read.last_read("http.response_cache") is None


def test_set_control_refuses_a_setting_no_application_reads(system):
    action = system.catalogue.get("set_control")
    with pytest.raises(ActionError, match=r"no application reads http\.response_cache"):
        action.plan({"key": "http.response_cache", "value": True})
    assert not system.store.controls.exists("http.response_cache")

    app_reads(system.settings, system.store, "http.response_cache", default=False)
    plan = action.plan({"key": "http.response_cache", "value": True})
    assert plan.params == {"key": "http.response_cache", "value": True}


def test_a_setting_last_read_before_the_lookback_is_refused(system):
    with system.store.engine.begin() as connection:
        system.store.settings_read.record([(["db.pool_size"], time.time() - 2 * DAY)], connection)
    action = SetControl(system.store.controls, system.store.settings_read, lookback_seconds=DAY)
    with pytest.raises(ActionError, match=r"no application reads db\.pool_size .*last 24 h"):
        action.plan({"key": "db.pool_size", "value": 10})


def test_a_report_sent_again_late_never_moves_the_last_read_back(system):
    now = time.time()
    reads = system.store.settings_read
    with system.store.engine.begin() as connection:
        reads.record([(["db.pool_size"], now), (["db.pool_size"], now - 10)], connection)
    with system.store.engine.begin() as connection:
        reads.record([(["db.pool_size"], now - DAY)], connection)
    assert reads.last_read("db.pool_size") == now


def test_the_next_candidate_is_chosen_when_the_application_never_reads_the_setting(system):
    remediation = system.executor.remediate(fault(system))

    assert remediation.action == "restart_shop"
    assert not system.store.controls.exists("shop.drain")
    history = system.store.executions.history(remediation.incident_id)
    (failed,) = [e for e in history if e.state is ExecutionState.FAILED]
    assert failed.action == "set_control"
    assert "no application reads shop.drain" in failed.reason


def test_when_the_application_reads_it_the_setting_is_the_fix_chosen(system):
    app_reads(system.settings, system.store, "shop.drain", default=False)
    remediation = system.executor.remediate(fault(system))

    assert remediation.action == "set_control"
    assert system.store.controls.get("shop.drain") is True
