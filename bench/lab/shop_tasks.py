"""The shop's own Celery app, on its own Redis broker DB, run by its own worker:

    celery -A bench.lab.shop_tasks worker --concurrency 2

Wired to selfmend as the README's Celery section says: ``install_task_aliases(app)``, the
worker's ERROR lines forwarded with ``client.LogHandler``, and ``worker_pool_restarts`` on, so
``celery_pool_restart`` may replace its pool. The task metrics the catalogue reads
(``celery.task_wait_seconds``, ``celery.task_runtime_seconds``, ``celery.task_failure_ratio``,
``process.rss_bytes``) are pushed with ``client.record``, as docs/patterns.md says the
application does.
"""

from __future__ import annotations

import os
import threading
import time

from billiard.process import current_process
from celery import Celery
from celery.signals import (
    after_setup_logger,
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_process_init,
)

from bench.lab.vitals import rss_bytes
from selfmend import client
from selfmend_celery import install_task_aliases

SENT_AT = "shop_sent_at"
SAMPLE_SECONDS = 5.0

app = Celery("shop", broker=os.environ.get("SHOP_BROKER_URL", "redis://127.0.0.1:6379/13"))
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    worker_pool_restarts=True,
)
install_task_aliases(app)

_leaked: list[bytearray] = []  # what import_feed keeps: the lab's memory-growth fault
_started: dict[str, float] = {}


@app.task(name="shop.send_receipt")
def send_receipt(order_id: int) -> None:
    """A receipt per order: the steady background work of the shop."""
    time.sleep(0.05)


@app.task(name="shop.sync_inventory")
def sync_inventory(seconds: float) -> None:
    """A sync against a supplier that, when the supplier hangs, hangs too."""
    time.sleep(seconds)


@app.task(name="shop.import_feed")
def import_feed(megabytes: int) -> None:
    """Imports a product feed and, by a bug, keeps every feed it read in memory."""
    chunk = bytearray(megabytes * 1024 * 1024)
    chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page so it is resident
    _leaked.append(chunk)


@before_task_publish.connect
def stamp(headers: dict, **_) -> None:
    headers[SENT_AT] = time.time()


@task_prerun.connect
def started(task_id: str, task, **_) -> None:
    _started[task_id] = time.time()
    sent = getattr(task.request, SENT_AT, None)
    if sent is not None:
        client.record("celery.task_wait_seconds", time.time() - float(sent), service="shop")


@task_postrun.connect
def finished(task_id: str, task, state: str | None = None, **_) -> None:
    began = _started.pop(task_id, None)
    if began is not None:
        client.record("celery.task_runtime_seconds", time.time() - began, service="shop")
    client.record("celery.task_failure_ratio", float(state == "FAILURE"), service="shop")


@after_setup_logger.connect
def forward_errors(logger, **_) -> None:
    logger.addHandler(client.LogHandler())


@worker_process_init.connect
def sample_memory(**_) -> None:
    """Each pool process reports its resident memory, the series process_memory_high reads,
    under the worker's node name (the action's destination) and its pool slot: the process that
    replaces it takes the same slot, so the series keeps its learned band and shows the drop."""
    worker = os.environ.get("SHOP_WORKER_NAME", "shop")
    slot = str(current_process().index)

    def loop() -> None:
        while True:
            client.record("process.rss_bytes", rss_bytes(), worker=worker, process=slot)
            time.sleep(SAMPLE_SECONDS)

    threading.Thread(target=loop, daemon=True, name="shop-rss").start()
