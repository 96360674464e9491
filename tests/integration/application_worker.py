"""An application's own Celery worker for the integration tests, as a user runs one beside
selfmend: its own app on its own broker (the ``side_broker`` Redis DB), a prefork pool of two,
``worker_pool_restarts`` on, and each pool process pushing its resident memory with the client
under the worker's node name and its pool slot."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selfmend.detect.pattern_file import parse_patterns
from tests.integration.conftest import wait_for
from tests.resources import empty_redis

REPO = Path(__file__).resolve().parents[2]
SHOP_APP = """\
import os
import threading
import time

from billiard.process import current_process
from celery import Celery
from celery.signals import worker_process_init

from selfmend import client

app = Celery("shop", broker=os.environ["SHOP_BROKER_URL"])
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=1, task_acks_late=True,
                worker_pool_restarts=True)
kept = []


@app.task(name="shop.sync_inventory")
def sync_inventory(seconds):
    time.sleep(seconds)


@app.task(name="shop.send_receipt")
def send_receipt(order):
    time.sleep(0.05)


@app.task(name="shop.import_feed")
def import_feed(megabytes):
    chunk = bytearray(megabytes * 1024 * 1024)
    chunk[::4096] = b"x" * len(chunk[::4096])
    kept.append(chunk)


@worker_process_init.connect
def sample_memory(**_):
    worker, slot = os.environ["SHOP_WORKER_NAME"], str(current_process().index)

    def loop():
        while True:
            with open("/proc/self/statm") as statm:
                rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            client.record("process.rss_bytes", rss, worker=worker, process=slot)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True).start()
"""


@contextmanager
def application_worker(folder: Path) -> Iterator[tuple[str, str, Any]]:
    """The application's broker URL, its worker's node name and a sender on that broker."""
    from celery import Celery

    broker = empty_redis("side_broker")
    (folder / "shop.py").write_text(SHOP_APP)
    node = f"shop-{os.getpid()}@localhost"
    env = {
        **os.environ,  # the client pushes to the session's SELFMEND_REDIS_URL
        "SHOP_BROKER_URL": broker,
        "SHOP_WORKER_NAME": node,
        "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]),
    }
    with (folder / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop", "worker", "--pool=prefork",
             "--concurrency=2", f"--hostname={node}", "--without-mingle", "--without-gossip",
             "--loglevel=INFO"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    sender = Celery("sender", broker=broker, set_as_current=False)
    try:
        pinged = lambda: sender.control.inspect([node], timeout=1).ping()  # noqa: E731
        assert wait_for(pinged, timeout=60, every=0.5), (folder / "worker.log").read_text()
        yield broker, node, sender
    finally:
        process.terminate()
        process.wait(30)


def installed_watching(install, broker: str, patterns: str):
    """The session worker's System watching the application's workers on ``broker`` with the
    ``patterns`` (TOML) and a short verification (a collect waits 1 s for the workers' replies)."""
    return install(
        patterns=parse_patterns(tomllib.loads(patterns), "test"),
        monitor_celery_broker_url=broker,
        monitor_celery_queues=["celery"],
        settle_seconds=3.0,
        verify_window_seconds=6.0,
    )
