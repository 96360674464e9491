"""The Celery actions against a real worker: a prefork ``celery worker`` subprocess of a small
ops application with an autoscaler, on the Redis broker, reached by selfmend's remote control."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.result import AsyncResult

from selfmend.errors import StepTooLarge
from selfmend.remedy.actions.celery_autoscale import CeleryAutoscale
from selfmend.remedy.actions.celery_pool_restart import CeleryPoolRestart
from selfmend.remedy.actions.celery_rate_limit import CeleryRateLimit
from selfmend.remedy.actions.celery_revoke import CeleryRevokeStuck
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OPS_APP = """\
import os
import time

from celery import Celery

app = Celery("ops", broker=os.environ["SELFMEND_BROKER_URL"],
             backend=os.environ["SELFMEND_RESULT_BACKEND"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_pool_restarts=True)


@app.task(name="ops.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture(scope="module")
def ops_worker(celery_app, tmp_path_factory):
    """The node name and queue of a prefork worker autoscaling between 1 and 3 processes."""
    folder = tmp_path_factory.mktemp("ops")
    (folder / "ops.py").write_text(OPS_APP)
    node, queue = f"ops-{os.getpid()}@localhost", f"ops.actions-test.{os.getpid()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    with (folder / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ops", "worker", "--pool=prefork",
             "--autoscale=3,1", f"--hostname={node}", f"--queues={queue}",
             "--without-mingle", "--without-gossip", "--loglevel=INFO"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        from workers.control import CeleryWorkerPools

        wait_for(lambda: CeleryWorkerPools(celery_app).sizes([node]), timeout=60, every=0.5)
        yield node, queue
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def ports(celery_app):
    from workers.control import CeleryTaskControl, CeleryWorkerPools

    return CeleryWorkerPools(celery_app), CeleryTaskControl(celery_app)


def test_a_rate_limit_is_set_once_and_rollback_lifts_it(ops_worker, ports):
    node, _ = ops_worker
    _, tasks = ports
    action = CeleryRateLimit(tasks)

    plan = action.plan({"task": "ops.sleep", "rate": "5/m", "destination": [node]})
    assert plan.undo == {"limits": {node: ""}}
    assert action.apply(plan)["changed"] is True
    assert tasks.rate_limits("ops.sleep", [node]) == {node: "5/m"}
    assert action.apply(plan)["changed"] is False

    assert action.rollback(plan)["changed"] is True
    assert tasks.rate_limits("ops.sleep", [node]) == {node: ""}


def test_a_stuck_task_is_stopped_and_a_second_apply_finds_nothing(celery_app, ops_worker, ports):
    node, queue = ops_worker
    _, tasks = ports
    action = CeleryRevokeStuck(tasks)
    stuck = celery_app.send_task("ops.sleep", args=[120], queue=queue)

    def running_for(seconds: float) -> bool:
        return any(
            task["id"] == stuck.id and time.time() - task["time_start"] > seconds
            for task in tasks.active([node]).get(node, [])
        )

    wait_for(lambda: running_for(1.0), timeout=30, every=0.3)
    plan = action.plan({"older_than_seconds": 1.0, "task": "ops.sleep", "destination": [node]})
    assert [task["id"] for task in plan.params["tasks"]] == [stuck.id]

    assert action.apply(plan) == {"changed": True, "stopped": [stuck.id]}
    assert wait_for(lambda: AsyncResult(stuck.id, app=celery_app).state == "REVOKED", timeout=15)
    wait_for(lambda: not running_for(0), timeout=15, every=0.3)
    assert action.apply(plan) == {"changed": False, "stopped": []}


def test_autoscale_limits_move_within_the_bound_and_rollback_restores_them(ops_worker, ports):
    node, _ = ops_worker
    pools, _ = ports
    action = CeleryAutoscale(pools)
    assert pools.autoscale_limits([node]) == {node: (3, 1)}

    with pytest.raises(StepTooLarge, match="at most 4 per apply"):
        action.plan({"maximum": 10, "minimum": 1, "destination": [node]})
    plan = action.plan({"maximum": 5, "minimum": 2, "destination": [node]})
    assert action.apply(plan)["changed"] is True
    assert pools.autoscale_limits([node]) == {node: (5, 2)}
    assert action.apply(plan)["changed"] is False

    assert action.rollback(plan)["changed"] is True
    assert pools.autoscale_limits([node]) == {node: (3, 1)}


def test_a_pool_restart_replaces_every_process(ops_worker, ports):
    node, _ = ops_worker
    pools, _ = ports
    action = CeleryPoolRestart(pools)
    before = set(pools.pool_processes([node])[node])

    plan = action.plan({"destination": [node]})
    assert action.apply(plan) == {"changed": True, "nodes": [node]}

    def replaced() -> bool:
        now = set(pools.pool_processes([node]).get(node, []))
        return bool(now) and not now & before

    assert wait_for(replaced, timeout=30, every=0.5)
    assert action.apply(plan)["changed"] is False
