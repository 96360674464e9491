"""selfmend reaching the application's own Celery workers on their own broker
(``SELFMEND_MONITOR_CELERY_BROKER_URL``), beside selfmend's worker on its broker: the collector
sees the application's queue and a stuck task's age, and the actions stop that task and restart
that worker's pool. Real Redis (two DBs), a real prefork ``celery worker`` subprocess."""

from __future__ import annotations

import time

import pytest
from celery.result import AsyncResult

from selfmend.models import ExecutionState, IncidentStatus, Sample, series_key
from tests.integration.application_worker import application_worker, installed_watching
from tests.integration.conftest import collecting, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with application_worker(tmp_path_factory.mktemp("shop")) as running:
        yield running


@pytest.fixture
def watching(install, shop):
    broker, node, sender = shop
    return install(monitor_celery_broker_url=broker, monitor_celery_queues=["celery"]), node, sender


def collected(system) -> dict[str, float]:
    [collector] = [c for c in system.pull_collectors if c.name == "celery"]
    return {series_key(s.series, s.labels): s.value for s in collector.collect()}


def test_a_stuck_task_on_the_applications_worker_is_seen_stopped_and_its_age_falls_to_0(
    watching,
):
    system, node, sender = watching
    age = series_key("celery.longest_task_seconds", {"worker": node})
    for _ in range(2):  # one per pool process
        sender.send_task("shop.sync_inventory", args=[120])
    for order in range(6):
        sender.send_task("shop.send_receipt", args=[order])

    assert wait_for(lambda: collected(system).get(age, 0) > 3, timeout=30, every=0.5)
    seen = collected(system)
    assert seen[series_key("celery.queue_depth", {"queue": "celery"})] >= 1
    # Only the application's workers are judged: selfmend's own stages report no age.
    assert [key for key in seen if key.startswith("celery.longest_task_seconds")] == [age]

    revoke = system.catalogue.get("celery_revoke_stuck")
    plan = revoke.plan({"older_than_seconds": 3, "destination": [node]})
    assert [task["name"] for task in plan.params["tasks"]] == ["shop.sync_inventory"] * 2
    assert revoke.apply(plan)["changed"] is True

    # The receipts behind the stuck tasks run, and with nothing running the age is 0 again.
    assert wait_for(lambda: collected(system).get(age) == 0, timeout=60, every=0.5)


def test_a_pool_restart_replaces_the_applications_pool_processes(watching):
    system, node, sender = watching
    pools = system.worker_pools
    before = set(pools.pool_processes([node])[node])

    restart = system.catalogue.get("celery_pool_restart")
    assert restart.apply(restart.plan({"destination": [node]})) == {
        "changed": True,
        "nodes": [node],
    }

    def replaced() -> bool:
        # An idle process blocked on the pool's queue leaves at its next task: keep work coming.
        sender.send_task("shop.send_receipt", args=[0])
        now = set(pools.pool_processes([node]).get(node, []))
        return len(now) == 2 and not now & before

    assert wait_for(replaced, timeout=30, every=0.5)


def test_the_registry_holds_the_applications_tasks_and_selfmends_own(watching):
    system, node, _ = watching
    names = system.task_registry.registered()
    assert {"shop.sync_inventory", "shop.send_receipt"} <= names[node]
    assert "selfmend.collect" in set().union(*names.values())


def test_without_the_applications_broker_the_ports_stay_on_selfmends_workers(install, shop):
    _, node, _ = shop
    system = install()
    assert node not in system.worker_pools.sizes()
    assert not any(key.startswith("celery.longest_task_seconds") for key in collected(system))


# The built-in celery_task_stuck in seconds: a floor of 3 s for a minute, 10 minutes' history.
QUICK_STUCK = """
[[patterns]]
name = "celery_task_stuck"
severity = "high"
condition = { series = "celery.longest_task_seconds", aggregate = "min", window = 5, op = ">", \
learn = { floor = 3, history = 600, warm_up = 60, relearn = 1 } }
action = { name = "celery_revoke_stuck", params = { older_than_seconds = 3, \
destination = ["{worker}"] } }
why = "stop_stuck_task: the built-in, in seconds."
"""


def test_the_loop_stops_a_stuck_task_of_the_application_and_verifies_its_age_fell(
    celery_app, install, shop
):
    broker, node, sender = shop
    system = installed_watching(install, broker, QUICK_STUCK)
    now, worker = time.time(), {"worker": node}
    usual = [Sample(series="celery.longest_task_seconds", ts=now - 600 + i / 2, value=(i % 3) / 10,
                    labels=worker) for i in range(1200)]  # fmt: skip
    system.store.samples.insert(usual)
    for _ in range(2):  # one per pool process
        sender.send_task("shop.sync_inventory", args=[120])

    def chain():
        return celery_app.send_task("selfmend.analyze").get(timeout=10)["chains"] or None

    with collecting(celery_app):
        incident_id, ids = next(iter(wait_for(chain, timeout=60, every=0.5).items()))
        verdict = AsyncResult(ids["verify"], app=celery_app).get(timeout=60)

    assert verdict["verdict"] == "fixed", verdict["after"]
    incident = system.store.incidents.get(int(incident_id))
    assert incident.series_key == series_key("celery.longest_task_seconds", worker)
    assert incident.status is IncidentStatus.RESOLVED
    steps = [(e.action, e.state) for e in system.store.executions.history(incident.id)]
    assert steps[-2:] == [
        ("celery_revoke_stuck", ExecutionState.APPLIED),
        ("celery_revoke_stuck", ExecutionState.VERIFIED),
    ]
