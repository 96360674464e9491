import pytest

from selfmend.config import Settings
from selfmend.errors import ActionError, StepTooLarge
from selfmend.remedy.actions.set_control import SetControl
from selfmend.store import Store
from tests.app_reads import app_reads


@pytest.fixture
def store(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
    app_reads(Settings(home=tmp_path), store, "db.pool_size", default=50)
    return store


def set_control(store) -> SetControl:
    return SetControl(store.controls, store.settings_read, lookback_seconds=24 * 3600)


def test_apply_then_rollback_restores_the_old_value(store):
    store.controls.set("db.pool_size", 50, actor="app")
    action = set_control(store)
    plan = action.plan({"key": "db.pool_size", "delta": -20, "minimum": 5})

    assert action.apply(plan)["changed"] is True
    assert store.controls.get("db.pool_size") == 30
    assert action.apply(plan)["changed"] is False  # checks first: a second apply is a no-op
    action.rollback(plan)
    assert store.controls.get("db.pool_size") == 50


def test_rollback_of_a_setting_that_did_not_exist_removes_it(tmp_path, store):
    app_reads(Settings(home=tmp_path), store, "cache.warm", default=False)
    store.controls.delete("cache.warm", actor="ops")  # read, and removed by an operator since
    action = set_control(store)
    plan = action.plan({"key": "cache.warm", "value": True})
    action.apply(plan)
    action.rollback(plan)
    assert not store.controls.exists("cache.warm")


def test_step_bound_and_clamp(store):
    store.controls.set("db.pool_size", 8, actor="app")
    action = set_control(store)
    with pytest.raises(StepTooLarge, match="max_step"):
        action.plan({"key": "db.pool_size", "delta": -80})
    assert action.plan({"key": "db.pool_size", "delta": -20, "minimum": 5}).params["value"] == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"key": "selfmend.kill", "value": 1}, "selfmend"),
        ({"key": "a", "value": 1, "delta": 1}, "exactly one"),
        ({"key": "a b", "value": 1}, "params.key"),
        ({"key": "a", "value": 1, "shell": "rm"}, "params.shell"),
    ],
)
def test_bad_params_are_refused_naming_the_field(store, params, field):
    with pytest.raises(ActionError, match=field):
        set_control(store).plan(params)
