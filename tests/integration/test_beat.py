"""Two beats at once: only the one holding the store's lease sends the stages, the other takes
over when it dies, and a stage sent under a superseded epoch does nothing. Real ``celery beat``
processes on Redis with the store on PostgreSQL, and the session's real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from selfmend.store import Store
from tests.resources import database_url, empty_redis, fresh_database, redis_url
from workers.beat import EPOCH_HEADER, LEASE

from .conftest import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BROKER = redis_url("side_broker")


def start_beat(folder: Path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SELFMEND_HOME": str(folder / name),
        "SELFMEND_STORE_URL": database_url("beat"),
        "SELFMEND_BROKER_URL": BROKER,
        "SELFMEND_RESULT_BACKEND": redis_url("side_results"),
        "SELFMEND_COLLECT_INTERVAL": "1",
        "SELFMEND_ANALYZE_INTERVAL": "3600",
        "SELFMEND_TASK_CHECK_INTERVAL": "3600",
        "SELFMEND_NOTIFY_INTERVAL": "3600",
        "SELFMEND_BEAT_LEASE_SECONDS": "3",
    }
    log = (folder / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel=INFO"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def collects_sent() -> int:
    return redis.Redis.from_url(BROKER).llen("selfmend.collect")


def test_of_two_beats_one_sends_and_the_other_takes_over_when_it_dies(tmp_path):
    store = Store.from_url(fresh_database("beat"), migrate=True)
    empty_redis("side_broker")
    empty_redis("side_results")
    beats = [start_beat(tmp_path, name) for name in ("first", "second")]
    try:
        wait_for(lambda: store.leases.holder(LEASE), timeout=30, every=0.2)
        started, before = time.monotonic(), collects_sent()
        wait_for(lambda: collects_sent() - before >= 6, timeout=60, every=0.1)
        sent = collects_sent() - before
        elapsed = time.monotonic() - started
        # One beat sends one collect a second; two would send twice as many.
        assert sent <= elapsed + 1, f"{sent} collects in {elapsed:.1f} s"

        leader, epoch = store.leases.holder(LEASE), store.leases.epoch(LEASE)
        (dead,) = [beat for beat in beats if f":{beat.pid}:" in leader]
        os.killpg(dead.pid, signal.SIGKILL)  # no release: the lease must lapse
        wait_for(lambda: store.leases.holder(LEASE) != leader, timeout=15, every=0.2)
        assert store.leases.epoch(LEASE) == epoch + 1  # 2, unless load made a beat stall
        resumed = collects_sent()
        wait_for(lambda: collects_sent() - resumed >= 2, timeout=30, every=0.1)  # the heir sends
    finally:
        for beat in beats:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGTERM)
                beat.wait(30)
        store.close()


def test_a_stage_sent_under_a_superseded_epoch_does_nothing(celery_app, install):
    system = install()
    system.store.leases.hold(LEASE, "old beat", 0.001)
    time.sleep(0.01)
    assert system.store.leases.hold(LEASE, "new beat", 60) == 2

    stale = celery_app.send_task(
        "selfmend.collect", headers={EPOCH_HEADER: 1, "celery_beat_task": True}
    )
    current = celery_app.send_task("selfmend.collect", headers={EPOCH_HEADER: 2})

    assert stale.get(timeout=10) == {"skipped": "sent by a beat of epoch 1; the beat is at 2"}
    assert "push" in current.get(timeout=10)
