"""Run a real worker and beat inside this process, on threads: what ``selfmend demo`` uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import state


@contextmanager
def embedded_worker(
    app: Celery, *, concurrency: int = 4, beat: bool = True, loglevel: str = "WARNING"
) -> Iterator[None]:
    # The worker's threads find the app through Celery's "current app"; make it this one, with
    # its tasks bound, or results and chained tasks go to the default app (nowhere).
    app.finalize(auto=True)
    app.set_current()
    app.set_default()
    worker = app.WorkController(
        pool="threads",
        concurrency=concurrency,
        loglevel=loglevel,
        hostname="selfmend-demo@%h",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    thread = threading.Thread(target=worker.start, daemon=True, name="selfmend-worker")
    thread.start()
    clock = EmbeddedService(app, thread=True) if beat else None
    if clock is not None:
        clock.start()
    try:
        yield
    finally:
        if clock is not None:
            clock.stop()
        state.should_terminate = 0
        thread.join(15)
        state.should_terminate = None
