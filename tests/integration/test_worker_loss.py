"""A worker SIGKILLed in the middle of a remediation: its message is delivered again to the next
worker (Redis broker, acks_late, a short visibility timeout) and the fix is applied once.

Real parts: ``celery -A workers worker`` subprocesses on Redis, the store on PostgreSQL, and a
user action installed through the ``selfmend.actions`` entry point group, whose apply is slow
enough to be killed in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from selfmend.config import Settings
from selfmend.models import ExecutionState, IncidentStatus, Severity
from selfmend.store import Store
from selfmend.system import System
from tests.resources import empty_redis, fresh_database

from .conftest import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SLOW_ACTION = '''
import time

from selfmend.models import Risk
from selfmend.remedy.base import Plan


class SlowFlag:
    """Sets a flag after three seconds; checks first, so a second apply changes nothing."""

    name = "slow_flag"
    risk = Risk.LOW
    reversible = True

    def __init__(self, store):
        self.controls = store.controls

    def plan(self, params):
        return Plan(self.name, "shop.flag", params, {}, "set shop.flag, slowly")

    def apply(self, plan):
        started = self.controls.get("test.apply_started") or 0
        self.controls.set("test.apply_started", started + 1, "t")
        time.sleep(3)
        if self.controls.get("shop.flag") is True:
            return {"changed": False}
        self.controls.set("shop.flag", True, "slow_flag")
        self.controls.set("test.applied", (self.controls.get("test.applied") or 0) + 1, "t")
        return {"changed": True}

    def rollback(self, plan):
        self.controls.delete("shop.flag", "slow_flag")
        return {"changed": True}
'''
PATTERNS = """
[[patterns]]
name = "flag_needed"
severity = "medium"
condition = { series = "shop.errors", aggregate = "max", window = 60, op = ">", threshold = 1 }
action = { name = "slow_flag" }
why = "test: the slow fix."
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The action's package on sys.path (here and for the workers), and the settings."""
    (tmp_path / "slow_ops.py").write_text(SLOW_ACTION)
    info = tmp_path / "slow_ops-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-ops\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[selfmend.actions]\nslow_flag = slow_ops:SlowFlag\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "patterns.toml").write_text(PATTERNS)
    store_url = fresh_database("worker_loss")
    Store.from_url(store_url, migrate=True).close()  # compose's migrate job
    return Settings(
        home=tmp_path / "home",
        store_url=store_url,
        broker_url=empty_redis("side_broker"),
        result_backend=empty_redis("side_results"),
        redis_url=empty_redis("side_state"),
        mode="auto",
        cooldown_seconds=0,
        settle_seconds=0.5,
        verify_window_seconds=1.0,
        visibility_timeout_seconds=5,
        patterns_file=tmp_path / "patterns.toml",
    )


def start_worker(settings: Settings, folder: Path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]),
        **{
            f"SELFMEND_{key.upper()}": str(value)
            for key, value in settings.model_dump(exclude_none=True).items()
            if key in WORKER_SETTINGS
        },
    }
    log = (folder / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool=prefork",
         "--concurrency=1", f"--hostname={name}-{os.getpid()}@localhost",
         "--queues=selfmend.remediate", "--without-mingle", "--without-gossip",
         "--loglevel=INFO"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


WORKER_SETTINGS = {
    "home", "store_url", "broker_url", "result_backend", "redis_url", "mode", "cooldown_seconds",
    "settle_seconds", "verify_window_seconds", "visibility_timeout_seconds", "patterns_file",
}  # fmt: skip


def test_a_worker_killed_while_applying_is_replaced_and_the_fix_applied_once(installed, tmp_path):
    from workers.app import create_app

    system = System.from_settings(installed)
    app = create_app(installed)
    incident, _ = system.store.incidents.open(
        pattern="flag_needed",
        target="shop.errors",
        severity=Severity.MEDIUM,
        series_key="shop.errors",
        root_cause="test",
        evidence={},
    )
    first = start_worker(installed, tmp_path, "doomed")
    try:
        app.send_task("selfmend.remediate", (incident.id,))
        wait_for(lambda: system.store.controls.get("test.apply_started") == 1, timeout=30)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, mid-apply
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert system.store.controls.get("shop.flag") is None
    assert system.store.incidents.get(incident.id).status is IncidentStatus.REMEDIATING

    second = start_worker(installed, tmp_path, "heir")
    try:
        wait_for(
            lambda: system.store.incidents.get(incident.id).status is IncidentStatus.VERIFYING,
            timeout=60,
            every=0.5,
        )
    finally:
        second.terminate()
        second.wait(30)

    history = system.store.executions.history(incident.id)
    states = [e.state for e in history]
    assert states.count(ExecutionState.APPLIED) == 1
    assert states.count(ExecutionState.RESUMED) == 1
    assert system.store.controls.get("shop.flag") is True
    assert system.store.controls.get("test.applied") == 1
