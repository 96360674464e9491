"""The production shape as a user starts it: ``celery -A workers worker -B`` and
``celery -A workers flower`` as separate processes on Redis and PostgreSQL; Flower lists the
selfmend tasks and shows the ones beat started; ``selfmend api`` serves the store."""

from __future__ import annotations

import ast
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from selfmend.models import Severity
from selfmend.store import Store
from tests.integration.conftest import wait_for
from tests.resources import empty_redis, fresh_database
from workers.app import STAGES

pytestmark = pytest.mark.integration

STAGE_TASKS = {f"selfmend.{stage}" for stage in STAGES}
FLOWER_USER = "ops:secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a loaded machine: stop it, pool and all
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """Own broker, result and push databases, so the test worker of this session sees nothing."""
    store_url = fresh_database("processes")
    Store.from_url(store_url, migrate=True).close()  # compose's migrate job
    return {
        **os.environ,
        "SELFMEND_HOME": str(tmp_path / "home"),
        "SELFMEND_BROKER_URL": empty_redis("side_broker"),
        "SELFMEND_RESULT_BACKEND": empty_redis("side_results"),
        "SELFMEND_REDIS_URL": empty_redis("side_state"),
        "SELFMEND_STORE_URL": store_url,
        "SELFMEND_COLLECT_INTERVAL": "1",
    }


def flower_get(port: int, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"Basic {base64.b64encode(FLOWER_USER.encode()).decode()}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_worker_with_beat_and_flower_start_and_flower_lists_the_tasks(production_env, tmp_path):
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    port = free_port()
    with ExitStack() as stack:
        stack.enter_context(
            running(
                [*celery, "worker", "-B", "--concurrency=2", "--loglevel=INFO"],
                production_env,
                tmp_path / "worker.log",
            )
        )
        stack.enter_context(
            running(
                [*celery, "flower", f"--port={port}", "--address=127.0.0.1",
                 f"--basic-auth={FLOWER_USER}"],
                production_env,
                tmp_path / "flower.log",
            )
        )  # fmt: skip

        def registered() -> set[str] | None:
            try:
                workers = flower_get(port, "/api/workers?refresh=1")
            except OSError:
                return None
            names = {name for node in workers.values() for name in node.get("registered", [])}
            return names if names >= STAGE_TASKS else None

        assert wait_for(registered, timeout=60, every=1) >= STAGE_TASKS

        def collected_by_beat() -> list[dict] | None:
            tasks = flower_get(port, "/api/tasks?taskname=selfmend.collect&state=SUCCESS")
            return list(tasks.values()) or None

        done = wait_for(collected_by_beat, timeout=30, every=1)
        assert done[0]["name"] == "selfmend.collect"
        # Flower shows a result as its Python repr.
        assert "push" in ast.literal_eval(done[0]["result"])


def http(port: int, method: str, path: str, key: str | None = None, body: object = None):
    """(status, body) of one request to the API on loopback."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"X-Admin-Key": key} if key else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_selfmend_api_serves_the_store_with_keys_and_metrics(production_env, tmp_path):
    admin_key = "k" * 24
    env = {
        **production_env,
        "SELFMEND_ADMIN_KEYS": json.dumps([{"name": "ada", "role": "admin", "key": admin_key}]),
    }
    store = Store.from_url(env["SELFMEND_STORE_URL"], migrate=True)
    incident, _ = store.incidents.open(
        pattern="slow_queries", target="shop", severity=Severity.HIGH, series_key=None,
        root_cause="slow_queries", evidence={},
    )  # fmt: skip
    port = free_port()
    command = [sys.executable, "-m", "selfmend.cli", "api", f"--port={port}"]
    with running(command, env, tmp_path / "api.log"):
        assert wait_for(lambda: _answers(port), timeout=30, every=0.5)

        assert http(port, "GET", "/incidents")[0] == 401
        status, listed = http(port, "GET", "/incidents", admin_key)
        assert status == 200
        assert [i["id"] for i in json.loads(listed)] == [incident.id]
        switched = http(
            port, "PUT", "/kill-switch", admin_key, {"enabled": True, "reason": "drill"}
        )
        assert switched[0] == 200
        assert store.controls.kill_switch()
        metrics = http(port, "GET", "/metrics")[1]
        assert 'selfmend_incidents{status="open"} 1.0' in metrics
        assert "selfmend_kill_switch 1.0" in metrics


def _answers(port: int) -> bool:
    try:
        return http(port, "GET", "/health")[0] == 200
    except OSError:
        return False
