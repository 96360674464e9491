"""Feature flags: a stable share of units, what the client answers, and the feature_flag action
on a SQLite store."""

import pytest

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import ActionError, InvalidInput, StepTooLarge
from selfmend.flags import is_on, share
from selfmend.remedy.actions.feature_flag import FeatureFlag
from selfmend.store import Store

USERS = range(20_000)


@pytest.fixture
def store(tmp_path):
    return Store.from_url(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)


def test_a_share_turns_the_feature_on_for_about_that_share_of_units():
    on = sum(is_on("checkout", {"percent": 25}, user) for user in USERS)
    assert 0.23 < on / len(USERS) < 0.27


def test_raising_the_share_keeps_every_unit_that_was_in():
    at_10 = {user for user in USERS if is_on("checkout", {"percent": 10}, user)}
    at_20 = {user for user in USERS if is_on("checkout", {"percent": 20}, user)}
    assert at_10 < at_20
    # Another flag's 10 % is another set of users, not the same first tenth.
    other = {user for user in USERS if is_on("search", {"percent": 10}, user)}
    assert len(other & at_10) < len(at_10) / 2


def test_all_or_nothing_needs_no_unit_and_a_share_is_off_without_one():
    assert is_on("checkout", True, None) and not is_on("checkout", False, 7)
    assert not is_on("checkout", {"percent": 99}, None)


@pytest.mark.parametrize("value", ["yes", 1, {"percent": 101}, {"percent": True}, {"pct": 5}])
def test_a_stored_value_that_is_no_flag_is_refused_naming_the_flag(value):
    with pytest.raises(InvalidInput, match=r"flag checkout: .* \(live setting flag\.checkout\)"):
        share("checkout", value)


def test_the_client_reads_a_flag_and_a_broken_one_counts_as_its_default(tmp_path, store):
    client = Client(Settings(home=tmp_path), store=store, control_ttl=0)
    assert client.flag("checkout") is False  # first read stores the default
    assert store.controls.get("flag.checkout") is False
    store.controls.set("flag.checkout", True, actor="ops")
    assert client.flag("checkout", unit="u1") is True
    store.controls.set("flag.checkout", "sometimes", actor="ops")
    assert client.flag("checkout", default=True) is True
    client.close()


def test_the_action_dials_the_share_and_undo_restores_it(store):
    store.controls.set("flag.checkout", {"percent": 40}, actor="app")
    action = FeatureFlag(store.controls)
    plan = action.plan({"name": "checkout", "percent": 0})

    assert plan.summary == "turn flag checkout from 40 % to 0 % of units"
    assert action.apply(plan)["changed"] is True
    assert store.controls.get("flag.checkout") is False
    assert action.apply(plan)["changed"] is False
    action.rollback(plan)
    assert store.controls.get("flag.checkout") == {"percent": 40}


def test_the_action_is_bounded_and_acts_only_on_flags_the_application_read(store):
    store.controls.set("flag.checkout", True, actor="app")
    action = FeatureFlag(store.controls)
    with pytest.raises(StepTooLarge, match="from 100 % to 10 % exceeds max_step 50"):
        action.plan({"name": "checkout", "percent": 10, "max_step": 50})
    with pytest.raises(ActionError, match="no flag search: the application never read it"):
        action.plan({"name": "search", "percent": 0})
    with pytest.raises(ActionError, match="percent"):
        action.plan({"name": "checkout", "percent": 150})
