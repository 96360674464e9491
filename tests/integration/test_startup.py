"""Start-up on a new PostgreSQL database, as docker compose does it: the migrate job, worker,
beat and API start at once. Only ``selfmend db upgrade`` migrates, under an advisory lock; the
others wait for the schema, and a process left waiting says what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

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
