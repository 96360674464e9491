"""The integration check against a real worker: a ``celery worker`` subprocess of a small shop
application on the Redis broker, selfmend's store on PostgreSQL, and a client that misspells a
task name. The check finds the name in the worker's log, the approved alias routes it to the
right task, and rollback takes the alias away; and the whole loop runs through selfmend's own
worker: the shop's error line is pushed and collected, ``selfmend.check_tasks`` opens an incident
proposing the alias, a person approves it, and the alias is applied and verified."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.exceptions import NotRegistered

from selfmend.detect.task_names import check, in_log
from selfmend.models import IncidentStatus
from selfmend.remedy.actions.task_alias import TaskAlias
from selfmend.remedy.approvals import approve
from selfmend.remedy.policy import GateFacts, Verdict, decide
from selfmend.store import Store
from selfmend.store.task_aliases import TaskAliasStore
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SHOP_APP = """\
import os

from celery import Celery
from celery.signals import after_setup_logger

from selfmend import client
from selfmend_celery import install_task_aliases

app = Celery(
    "shop",
    broker=os.environ["SELFMEND_BROKER_URL"],
    backend=os.environ["SELFMEND_RESULT_BACKEND"],
)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


@app.task(name="shop.send_invoice")
def send_invoice(order_id):
    return f"invoice for order {order_id}"


install_task_aliases(app, refresh_seconds=0.2)


@after_setup_logger.connect
def forward_errors(logger, **_):
    logger.addHandler(client.LogHandler())  # the worker's ERROR lines reach selfmend's store
"""


class ShopWorker:
    def __init__(self, node: str, queue: str, log: Path) -> None:
        self.node, self.queue, self.log = node, queue, log

    def output(self) -> str:
        return self.log.read_text()

    def mark(self) -> int:
        """Where the log ends now: ``wait_for_line`` after it ignores what came before."""
        return len(self.output())

    def wait_for_line(self, text: str, after: int = 0) -> None:
        wait_for(lambda: text in self.output()[after:], timeout=10, every=0.1)


@pytest.fixture(scope="module")
def shop_worker(celery_app, tmp_path_factory):
    """The shop's prefork worker (one child process) on a queue of its own."""
    folder = tmp_path_factory.mktemp("shop")
    (folder / "shop.py").write_text(SHOP_APP)
    node, queue = f"shop-{os.getpid()}@localhost", f"shop.alias-test.{os.getpid()}"
    log_path = folder / "worker.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop", "worker", "--pool=prefork",
             "--concurrency=1", f"--hostname={node}", f"--queues={queue}",
             "--without-mingle", "--without-gossip", "--loglevel=INFO"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        worker = ShopWorker(node, queue, log_path)
        wait_for(lambda: f"{node} ready." in worker.output() or process.poll(), timeout=30)
        assert process.poll() is None, worker.output()
        yield worker
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def alias_action(celery_app, shop_worker):
    from workers.control import CeleryTaskRegistry

    store = Store.from_url(celery_app.selfmend_settings.resolved_store_url, migrate=True)
    registry = CeleryTaskRegistry(celery_app)
    wait_for(lambda: shop_worker.node in registry.registered(), timeout=10, every=0.2)
    yield TaskAlias(TaskAliasStore(store.controls), registry), registry
    store.close()


def approval_gate(action: TaskAlias, target: str, approved: bool) -> Verdict:
    facts = GateFacts(
        mode="auto",
        action=action.name,
        target=target,
        risk=action.risk,
        kill_switch_on=False,
        approved=approved,
        last_applied_at=None,
        cooldown_seconds=0,
        now=time.time(),
    )
    return decide(facts).verdict


def test_a_misspelled_task_name_is_found_aliased_to_the_right_task_and_rolled_back(
    celery_app, shop_worker, alias_action
):
    action, registry = alias_action

    def send_misspelled():
        return celery_app.send_task("shop.send_invoce", args=[42], queue=shop_worker.queue)

    with pytest.raises(NotRegistered):
        send_misspelled().get(timeout=10)
    shop_worker.wait_for_line("Received unregistered task of type 'shop.send_invoce'")

    registered = set().union(*registry.registered().values())
    (finding,) = check(registered, in_log(shop_worker.output(), "worker.log"))

    assert finding.name == "shop.send_invoce"
    assert finding.suggestion == "shop.send_invoice"
    plan = action.plan(finding.alias_params)
    assert approval_gate(action, plan.target, approved=False) is Verdict.AWAIT_APPROVAL
    assert approval_gate(action, plan.target, approved=True) is Verdict.APPLY

    assert action.apply(plan)["changed"] is True
    assert action.apply(plan)["changed"] is False
    shop_worker.wait_for_line("task alias on: shop.send_invoce -> shop.send_invoice")

    assert send_misspelled().get(timeout=10) == "invoice for order 42"

    assert action.rollback(plan)["changed"] is True
    shop_worker.wait_for_line("task alias off: shop.send_invoce")

    with pytest.raises(NotRegistered):
        send_misspelled().get(timeout=10)


def test_the_loop_finds_the_misspelled_name_and_applies_the_approved_alias(
    celery_app, shop_worker, install
):
    from celery.result import AsyncResult

    system = install(patterns=())
    misspelled = celery_app.send_task("shop.send_invoce", args=[7], queue=shop_worker.queue)
    with pytest.raises(NotRegistered):
        misspelled.get(timeout=10)
    wait_for(lambda: celery_app.send_task("selfmend.collect").get(timeout=10)["push"]["logs"])

    checked = celery_app.send_task("selfmend.check_tasks").get(timeout=30)
    (incident_id,) = checked["new_incidents"]
    chain_ids = checked["chains"][str(incident_id)]
    waiting = AsyncResult(chain_ids["remediate"], app=celery_app).get(timeout=10)
    assert waiting["decision"] == "awaiting_approval"
    assert TaskAliasStore(system.store.controls).all() == {}

    approve(system.store, incident_id, actor="ops", timeout_seconds=3600)
    mark = shop_worker.mark()
    resumed = celery_app.send_task("selfmend.analyze").get(timeout=30)["chains"][str(incident_id)]
    applied = AsyncResult(resumed["remediate"], app=celery_app).get(timeout=10)
    assert applied["decision"] == "applied"
    shop_worker.wait_for_line("task alias on: shop.send_invoce -> shop.send_invoice", mark)
    resent = celery_app.send_task("shop.send_invoce", args=[7], queue=shop_worker.queue)
    assert resent.get(timeout=10) == "invoice for order 7"

    judged = AsyncResult(resumed["verify"], app=celery_app).get(timeout=60)
    assert (judged["verdict"], judged["status"]) == ("fixed", "resolved")
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED
    assert celery_app.send_task("selfmend.check_tasks").get(timeout=30)["new_incidents"] == []
