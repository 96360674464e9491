"""celery_pool against a real prefork worker: a ``celery worker`` subprocess on the Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from selfmend.errors import ActionError
from selfmend.remedy.actions.celery_pool import CeleryPool
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prefork_worker(celery_app, tmp_path_factory):
    """A prefork worker with two processes, consuming a queue of its own (no stage tasks)."""
    node = f"pooltest-{os.getpid()}@localhost"
    log = (tmp_path_factory.mktemp("prefork") / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool=prefork",
         "--concurrency=2", f"--hostname={node}", "--queues=selfmend.test.pool",
         "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    try:
        yield node
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture
def pool_action(celery_app, prefork_worker):
    from workers.control import CeleryWorkerPools

    pools = CeleryWorkerPools(celery_app)
    wait_for(lambda: pools.sizes([prefork_worker]), timeout=60, every=0.5)
    return CeleryPool(pools), pools


def test_grow_adds_a_process_and_rollback_removes_it(pool_action, prefork_worker):
    action, pools = pool_action
    assert pools.sizes([prefork_worker]) == {prefork_worker: 2}

    plan = action.plan({"grow": 1, "destination": [prefork_worker]})
    applied = action.apply(plan)

    assert applied["changed"] is True
    assert wait_for(lambda: pools.sizes([prefork_worker]) == {prefork_worker: 3}, timeout=10)
    assert action.apply(plan)["changed"] is False  # a redelivered apply does nothing twice

    rolled_back = action.rollback(plan)

    assert rolled_back["changed"] is True
    assert wait_for(lambda: pools.sizes([prefork_worker]) == {prefork_worker: 2}, timeout=10)
    assert action.rollback(plan)["changed"] is False


def test_shrink_below_the_minimum_is_refused(pool_action, prefork_worker):
    action, pools = pool_action

    with pytest.raises(ActionError, match="below 2"):
        action.plan({"shrink": 1, "destination": [prefork_worker], "minimum": 2})

    assert pools.sizes([prefork_worker]) == {prefork_worker: 2}


def test_a_worker_that_does_not_answer_is_an_error(pool_action):
    action, _ = pool_action

    with pytest.raises(ActionError, match="no worker answered"):
        action.plan({"grow": 1, "destination": ["nobody@nowhere"]})
