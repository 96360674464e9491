"""breaker_force and breaker_thresholds against a real Redis (database 3): the application's
client declares a breaker, selfmend's actions hold and tune it through the shared state, and
undo restores what the plan found."""

from __future__ import annotations

import pytest

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import ActionError, CircuitOpen, StepTooLarge
from selfmend.resilience.breaker import State
from selfmend.system import System
from tests.breaker_calls import Down, fail
from tests.resources import empty_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def shop(tmp_path):
    """The application's client with a payments breaker, and selfmend's system beside it."""
    settings = Settings(
        home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db", redis_url=empty_redis("breaker")
    )
    system = System.from_settings(settings, patterns=())
    client = Client(settings, store=system.store)
    payments = client.breaker(  # one test process: let its failures alone open the breaker
        "payments", failure_threshold=4, window_size=10, min_processes=1, sync_seconds=0
    )
    yield payments, system
    client.close()


def test_force_open_sheds_every_call_and_undo_releases(shop):
    payments, system = shop
    action = system.catalogue.get("breaker_force")
    plan = action.plan({"breaker": "payments", "hold": "open"})
    assert plan.undo == {"hold": "released"}

    assert action.apply(plan) == {"changed": True, "breaker": "payments", "state": "forced_open"}
    with pytest.raises(CircuitOpen, match="forced_open"):
        payments.call(lambda: "charged")
    assert action.apply(plan)["changed"] is False  # already held: a redelivery changes nothing

    assert action.rollback(plan)["state"] == "closed"
    assert payments.call(lambda: "charged") == "charged"
    rows = system.store.breaker_events.recent("payments")
    assert [(row["from_state"], row["to_state"]) for row in rows] == [
        ("closed", "forced_open"),
        ("forced_open", "closed"),
    ]
    assert rows[0]["reason"] == "held forced_open by selfmend: breaker_force apply"


def test_undo_restores_the_hold_an_operator_had(shop):
    payments, system = shop
    system.breakers.hold("payments", State.FORCED_CLOSED, actor="ops")
    action = system.catalogue.get("breaker_force")
    plan = action.plan({"breaker": "payments", "hold": "open"})
    action.apply(plan)
    action.rollback(plan)
    assert payments.state is State.FORCED_CLOSED


def test_thresholds_move_for_every_process_and_undo_restores_them(shop):
    payments, system = shop
    action = system.catalogue.get("breaker_thresholds")
    plan = action.plan({"breaker": "payments", "failure_threshold": 8})
    assert plan.summary == "breaker payments: failure_threshold 4 → 8"
    assert action.apply(plan)["changed"] is True
    assert action.apply(plan)["changed"] is False

    for _ in range(4):
        with pytest.raises(Down):
            payments.call(fail)
    assert payments.state is State.CLOSED  # four failures no longer open it
    assert payments.settings.failure_threshold == 8

    action.rollback(plan)
    with pytest.raises(Down):
        payments.call(fail)  # the fifth failure, under the restored threshold of 4
    assert payments.settings.failure_threshold == 4
    assert payments.state is State.OPEN


def test_a_step_over_the_bound_is_refused(shop):
    _, system = shop
    action = system.catalogue.get("breaker_thresholds")
    with pytest.raises(StepTooLarge, match=r"failure_threshold 4 → 10 moves by a factor of 2\.5"):
        action.plan({"breaker": "payments", "failure_threshold": 10})
    with pytest.raises(StepTooLarge, match="failure_threshold 4 → 1"):
        action.plan({"breaker": "payments", "failure_threshold": 1, "max_factor": 3})


def test_bad_threshold_changes_are_refused_naming_what_is_wrong(shop):
    _, system = shop
    action = system.catalogue.get("breaker_thresholds")
    with pytest.raises(ActionError, match="has no failure_rate to move"):
        action.plan({"breaker": "payments", "failure_rate": 0.5})
    with pytest.raises(ActionError, match="no process has declared breaker 'search'"):
        action.plan({"breaker": "search", "reset_timeout": 10})
    with pytest.raises(ActionError, match=r"params\.treshold"):
        action.plan({"breaker": "payments", "treshold": 5})
    with pytest.raises(ActionError, match="give at least one of"):
        action.plan({"breaker": "payments"})
    with pytest.raises(ActionError, match=r"breaker_force: params\.hold"):
        system.catalogue.get("breaker_force").plan({"breaker": "payments", "hold": "ajar"})
