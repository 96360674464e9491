"""Faults of the shop's Celery side: tasks that hang, a task that leaks memory, and a caller
that sends a misspelled task name. Undoing the first two restarts the shop's worker on an
emptied broker DB, as an operator would; the third stops sending."""

from __future__ import annotations

import threading

import redis

from bench.lab.faults import FaultContext

STUCK = 2  # one per pool process of the shop's worker
LEAK_MB = 25
LEAKS = 16
MISSPELLED = "shop.send_reciept"


class _RestartsWorker:
    def __init__(self, context: FaultContext) -> None:
        self.context = context

    def undo(self) -> None:
        """Stop the shop's worker, empty its broker (with late acks the stuck or leaking
        messages would be delivered again) and start it afresh."""
        self.context.shop_worker.stop()
        with redis.Redis.from_url(self.context.env.shop_broker_url) as broker:
            broker.flushdb()
        self.context.shop_worker.start()


class StuckTasks(_RestartsWorker):
    name = "stuck_tasks"
    broke = "receipts (both worker processes hang in shop.sync_inventory; a backlog builds)"
    deadline = 120.0

    def inject(self) -> dict:
        celery = self.context.shop_celery()
        for _ in range(STUCK):
            celery.send_task("shop.sync_inventory", args=[self.deadline + 120])
        return {"stuck": STUCK}


class MemoryLeak(_RestartsWorker):
    name = "memory_leak"
    broke = f"worker memory (shop.import_feed keeps {LEAKS} x {LEAK_MB} MB)"
    # A leak stays until something restarts the process, and memory is judged over minutes
    # (a large task's passing peak is not a leak): held long enough for a fix to be verified.
    deadline = 180.0

    def inject(self) -> dict:
        celery = self.context.shop_celery()
        for _ in range(LEAKS):
            celery.send_task("shop.import_feed", args=[LEAK_MB])
        return {"megabytes": LEAKS * LEAK_MB}


class MisspelledTask:
    name = "misspelled_task"
    broke = f"receipts sent as {MISSPELLED!r}, a name no worker has"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.context = context
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def inject(self) -> dict:
        self._stop.clear()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()
        return {"task": MISSPELLED}

    def _send(self) -> None:
        celery = self.context.shop_celery()
        order = 0
        while not self._stop.wait(1.0):
            order += 1
            celery.send_task(MISSPELLED, args=[order])

    def undo(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
