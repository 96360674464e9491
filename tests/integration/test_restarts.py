"""The loop outlives restarts of its servers (issue 14): ``celery -A workers worker -B`` keeps
scheduling and running the stages after PostgreSQL (the store) or Redis (the broker) restarts
under it, and the beat's scheduler outlives ticks that cannot reach the store. Each server is
the test's own, so restarting it disturbs no other test or run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from celery.beat import PersistentScheduler
from sqlalchemy import func, select

from selfmend.config import Settings
from selfmend.store import Store
from selfmend.store.tables import leases, samples
from tests.resources import empty_redis, fresh_database
from workers.app import create_app
from workers.beat import LEASE, LeaderScheduler

from .conftest import migrated, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3.0
DOWN_SECONDS = 3.0  # a beat renewing every second meets the outage in a few ticks


def celery(folder: Path, env: dict[str, str], name: str, *args: str) -> subprocess.Popen:
    with (folder / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", *args, "--loglevel=INFO"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@contextmanager
def the_loop(folder: Path, beat: str, store_url: str, redis: list[str]) -> Iterator[list[Path]]:
    """A worker and its beat, collecting every second, the beat's lease short: ``celery -A
    workers worker -B`` (``beat="embedded"``), or a worker and a ``celery beat`` process
    (``"standalone"``). Yields the logs; fails if a process ended before the test did."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SELFMEND_HOME": str(folder / "home"),
        "SELFMEND_STORE_URL": store_url,
        "SELFMEND_BROKER_URL": redis[0],
        "SELFMEND_RESULT_BACKEND": redis[1],
        "SELFMEND_REDIS_URL": redis[2],
        "SELFMEND_COLLECT_INTERVAL": "1",
        "SELFMEND_BEAT_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    worker = ["worker", "--pool=threads", "--concurrency=2", "--without-mingle",
              "--without-gossip", f"--hostname=restarts-{os.getpid()}@localhost"]  # fmt: skip
    if beat == "embedded":
        processes = {"worker": celery(folder, env, "worker", *worker, "-B")}
    else:
        processes = {
            "worker": celery(folder, env, "worker", *worker),
            "beat": celery(folder, env, "beat", "beat"),
        }
    try:
        yield [folder / f"{name}.log" for name in processes]
        ended = [name for name, process in processes.items() if process.poll() is not None]
        assert not ended, f"ended during the test: {ended}"
    finally:
        for process in processes.values():
            stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:  # a loaded machine: stop it, pool and all
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def lease_renewed_since(store: Store, since: float) -> bool:
    with store.engine.connect() as connection:
        expires = connection.execute(
            select(leases.c.expires_at).where(leases.c.name == LEASE)
        ).scalar()
    return expires is not None and expires - LEASE_SECONDS > since


def collected_since(store: Store, since: float) -> bool:
    """A collect stage stored the worker's own Celery samples after ``since``."""
    with store.engine.connect() as connection:
        newest = connection.execute(select(func.max(samples.c.ts))).scalar()
    return newest is not None and newest > since


def loop_runs_since(store: Store, since: float) -> bool:
    try:
        return lease_renewed_since(store, since) and collected_since(store, since)
    except Exception:  # the server this test restarts is not back yet
        return False


def logs(paths: list[Path]) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in paths)


def resumes(store: Store, since: float, paths: list[Path]) -> None:
    try:
        wait_for(lambda: loop_runs_since(store, since), timeout=30, every=0.2)
    except AssertionError:
        pytest.fail(f"no lease renewal or collect since the restart:\n{logs(paths)}")


@pytest.mark.parametrize("beat", ["embedded", "standalone"])
def test_worker_and_beat_resume_after_postgresql_restarts(tmp_path, private_postgres, beat):
    store_url = migrated(private_postgres.create_database("restarts"))
    redis = [empty_redis(role) for role in ("side_broker", "side_results", "side_state")]
    store = Store.from_url(store_url)
    try:
        with the_loop(tmp_path, beat, store_url, redis) as paths:
            resumes(store, 0.0, paths)
            private_postgres.stop()
            time.sleep(DOWN_SECONDS)  # the outage itself, not a wait for a result
            private_postgres.start()
            resumes(store, time.time(), paths)
            said = "".join(path.read_text() for path in paths)
            assert "sends nothing until the store is back" in said
    finally:
        store.close()


def test_worker_and_beat_resume_after_the_broker_redis_restarts(tmp_path, private_redis):
    store_url = migrated(fresh_database("restarts"))
    redis = [f"{private_redis.url}/{db}" for db in (0, 1, 2)]
    store = Store.from_url(store_url)
    try:
        with the_loop(tmp_path, "embedded", store_url, redis) as paths:
            resumes(store, 0.0, paths)
            private_redis.restart(down_for=DOWN_SECONDS)
            resumes(store, time.time(), paths)
    finally:
        store.close()


def test_a_tick_that_cannot_reach_the_store_sends_nothing_says_so_and_resumes(
    tmp_path, private_postgres, monkeypatch
):
    store_url = migrated(private_postgres.create_database("ticks"))
    settings = Settings(home=tmp_path, store_url=store_url, beat_lease_seconds=LEASE_SECONDS)
    sent: list[int] = []
    monkeypatch.setattr(PersistentScheduler, "tick", lambda *_a, **_k: sent.append(1) or 60.0)
    scheduler = LeaderScheduler(app=create_app(settings), schedule_filename=str(tmp_path / "s"))
    try:
        scheduler.tick()
        assert scheduler.epoch == 1 and len(sent) == 1

        private_postgres.stop()
        with structlog.testing.capture_logs() as logged:
            waits = [scheduler.tick() for _ in range(3)]
        assert scheduler.epoch is None and len(sent) == 1  # not leading: sent nothing
        assert all(0 < wait <= LEASE_SECONDS / 3 for wait in waits)  # retrying soon
        errors = [entry for entry in logged if entry["log_level"] == "error"]
        assert len(errors) == 1, logged  # said once, not on every tick
        assert "sends nothing until the store is back" in str(errors[0])

        private_postgres.start()
        scheduler.tick()
        assert scheduler.epoch == 1 and len(sent) == 2  # leads again, and schedules
    finally:
        scheduler.close()
