import logging

import pytest
from celery import Celery

from selfmend.errors import ActionError, ConfigurationError
from selfmend.models import Risk
from selfmend.remedy.actions.task_alias import TaskAlias
from selfmend.store import Store
from selfmend.store.task_aliases import TaskAliasStore
from selfmend_celery.task_aliases import (
    AliasRouter,
    AliasStrategy,
    TaskAliasStep,
    install_task_aliases,
)


class FakeRegistry:
    def __init__(self, registered: dict[str, set[str]]) -> None:
        self.answer = registered

    def registered(self) -> dict[str, set[str]]:
        return self.answer


@pytest.fixture
def aliases(tmp_path):
    return TaskAliasStore(
        Store.from_url(f"sqlite:///{tmp_path / 'store.db'}", migrate=True).controls
    )


@pytest.fixture
def action(aliases):
    registry = FakeRegistry({"shop@a": {"shop.send_invoice"}, "mail@b": {"mail.send"}})
    return TaskAlias(aliases, registry)


def test_the_alias_is_high_risk_so_a_person_approves_it(action):
    assert action.risk is Risk.HIGH
    assert action.risk.needs_approval


def test_apply_stores_the_alias_once_and_rollback_removes_it(action, aliases):
    plan = action.plan({"name": "shop.send_invoce", "target": "shop.send_invoice"})

    assert action.apply(plan)["changed"] is True
    assert aliases.all() == {"shop.send_invoce": "shop.send_invoice"}
    assert action.apply(plan)["changed"] is False  # a redelivered apply changes nothing

    assert action.rollback(plan)["changed"] is True
    assert aliases.all() == {}
    assert action.rollback(plan)["changed"] is False


def test_rollback_restores_the_alias_that_was_there_before(action, aliases):
    aliases.set("shop.invoice", "mail.send", actor="person")
    plan = action.plan({"name": "shop.invoice", "target": "shop.send_invoice"})
    assert "was mail.send" in plan.summary

    action.apply(plan)
    action.rollback(plan)

    assert aliases.get("shop.invoice") == "mail.send"


def test_only_a_registered_task_may_be_the_target(action):
    with pytest.raises(ActionError, match=r"no worker has registered shop\.send_invoices"):
        action.plan({"name": "shop.send_invoce", "target": "shop.send_invoices"})


def test_a_registered_task_is_never_shadowed(action):
    with pytest.raises(ActionError, match=r"mail\.send is a registered task on mail@b"):
        action.plan({"name": "mail.send", "target": "shop.send_invoice"})


def test_no_worker_answering_is_an_error(aliases):
    with pytest.raises(ActionError, match="no worker answered"):
        TaskAlias(aliases, FakeRegistry({})).plan({"name": "a.b", "target": "a.c"})
    with pytest.raises(ActionError, match="no Celery app is wired in"):
        TaskAlias(aliases, None).plan({"name": "a.b", "target": "a.c"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "shop.x"}, r"params\.target: Field required"),
        ({"name": "shop.x; rm -rf /", "target": "shop.y"}, r"params\.name: String should match"),
        ({"name": "x" * 200, "target": "shop.y"}, r"params\.name: String should have at most"),
        ({"name": "shop.y", "target": "shop.y"}, "the same task name"),
        ({"name": "shop.x", "target": "shop.y", "queue": "q"}, r"params\.queue: Extra inputs"),
    ],
)
def test_malformed_params_are_refused_naming_the_field(action, params, message):
    with pytest.raises(ActionError, match=message):
        action.plan(params)


class Recorder:
    """A consumer strategy that remembers the task name of each message it was handed."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, message, body, ack, reject, callbacks):
        self.names.append(message.headers["task"])


class Message:
    def __init__(self, name: str) -> None:
        self.headers = {"task": name, "id": "1"}


def test_the_worker_renames_an_aliased_message_and_hands_it_to_the_target():
    invoice = Recorder()
    strategies = {"shop.send_invoice": invoice}
    router = AliasRouter(strategies, tasks={"shop.send_invoice": object()})

    router.update({"shop.send_invoce": "shop.send_invoice"})
    strategies["shop.send_invoce"](Message("shop.send_invoce"), None, None, None, None)

    assert invoice.names == ["shop.send_invoice"]

    router.update({})

    assert "shop.send_invoce" not in strategies
    assert strategies == {"shop.send_invoice": invoice}


def test_the_worker_refuses_an_alias_to_a_task_it_has_not_registered(caplog):
    strategies = {"shop.send_invoice": Recorder(), "shop.refund": Recorder()}
    router = AliasRouter(strategies, tasks=dict.fromkeys(strategies))

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            router.update({"shop.x": "os.system", "shop.refund": "shop.send_invoice"})

    assert "shop.x" not in strategies
    assert not isinstance(strategies["shop.refund"], AliasStrategy)
    refusals = [r.getMessage() for r in caplog.records]
    assert len(refusals) == 2  # each refusal is logged once, not on every refresh
    assert "not a task registered on this worker" in refusals[0]
    assert "keeps running its own code" in refusals[1]


def test_install_adds_the_consumer_step_and_refuses_a_refresh_of_zero():
    app = Celery("shop", set_as_current=False)
    install_task_aliases(app)
    assert TaskAliasStep in app.steps["consumer"]

    with pytest.raises(ConfigurationError, match="refresh_seconds must be above 0"):
        install_task_aliases(app, refresh_seconds=0)
