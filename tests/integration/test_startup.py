"""Start-up on a new PostgreSQL database, as docker compose does it: the migrate job, worker,
beat and API start at once. Only ``selfmend db upgrade`` migrates, under an advisory lock; the
others wait for the schema, and a process left waiting says what to run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from sqlalchemy import text

from selfmend.store import Store
from tests.resources import database_url, fresh_database

SELFMEND = shutil.which("selfmend", path=os.path.dirname(sys.executable))
# What a worker, beat or the API does first: build the system on the store, or open it.
WORKER = "from selfmend.config import Settings; from selfmend.system import System; " \
    "System.from_settings(Settings(), patterns=()).store.close()"  # fmt: skip
API = "from selfmend.api.app import create_app; from selfmend.config import Settings; " \
    "create_app(Settings())"  # fmt: skip


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_six_processes_starting_together_on_a_new_database_all_come_up(tmp_path):
    url = fresh_database("startup")
    env = {**os.environ, "SELFMEND_STORE_URL": url, "SELFMEND_HOME": str(tmp_path)}
    env.pop("SELFMEND_REDIS_URL", None)
    commands = [
        [SELFMEND, "db", "upgrade"],
        [SELFMEND, "db", "upgrade"],  # two migrate jobs: a deploy and a restart overlapping
        [sys.executable, "-c", WORKER],
        [sys.executable, "-c", WORKER],
        [sys.executable, "-c", WORKER],
        [sys.executable, "-c", API],
    ]
    processes = [start(command, env) for command in commands]
    outputs = [process.communicate(timeout=180)[0] for process in processes]

    failed = [out for process, out in zip(processes, outputs, strict=True) if process.returncode]
    assert failed == []
    store = Store.from_url(url)
    with store.engine.connect() as connection:
        versions = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    store.close()
    assert versions == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return None


def test_selfmend_api_started_before_the_migration_waits_for_it_and_serves(tmp_path):
    url = fresh_database("startup_api")
    port = free_port()
    key = {"name": "olga", "role": "admin", "key": "a-long-random-secret"}
    env = {
        **os.environ,
        "SELFMEND_STORE_URL": url,
        "SELFMEND_HOME": str(tmp_path),
        "SELFMEND_ADMIN_KEYS": json.dumps([key]),
        "SELFMEND_SCHEMA_WAIT_SECONDS": "60",
    }
    env.pop("SELFMEND_REDIS_URL", None)
    output = tmp_path / "api.log"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [SELFMEND, "api", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
    try:
        # The migrate job runs only once the api is waiting for it, as on a fresh compose up.
        deadline = time.monotonic() + 60
        while "store.waiting_for_schema" not in output.read_text():
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "selfmend api never waited for the schema"
            time.sleep(0.1)
        migrate = subprocess.run(
            [SELFMEND, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stderr
        deadline = time.monotonic() + 60
        while health(port) != 200:
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "selfmend api never answered /health"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_worker_with_no_migration_run_stops_saying_what_to_run(tmp_path):
    url = fresh_database("startup_unmigrated")
    env = {
        **os.environ,
        "SELFMEND_STORE_URL": url,
        "SELFMEND_HOME": str(tmp_path),
        "SELFMEND_SCHEMA_WAIT_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "run `selfmend db upgrade`" in done.stderr
    assert "schema at nothing" in done.stderr


def test_a_worker_on_a_database_that_does_not_exist_says_how_to_create_it(tmp_path):
    url = database_url("startup_never_created")  # named, not created
    env = {**os.environ, "SELFMEND_STORE_URL": url, "SELFMEND_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert 'database "selfmend_s' in done.stderr and "createdb" in done.stderr
