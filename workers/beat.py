"""The beat: sends the stages on schedule only while it holds the store's beat lease.

A second beat (started by mistake, or the new one of a rolling deploy) finds the lease held and
sends nothing until the first one's lapses. Every message the beat sends carries the lease's
epoch; a stage task compares it with the epoch now (``BeatGuardedTask``), so a beat that was
paused past its lease and wakes believing it still leads sends only work that does nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import structlog
from celery import Task
from celery.beat import PersistentScheduler
from celery.signals import before_task_publish

from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts

log = structlog.get_logger(__name__)

LEASE = "beat"
EPOCH_HEADER = "selfmend_beat_epoch"
BEAT_HEADER = "celery_beat_task"  # what Celery's beat puts on every message it sends


class LeaderScheduler(PersistentScheduler):
    """``celery beat`` with ``--scheduler workers.beat:LeaderScheduler`` (the app's default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.app.selfmend_settings
        self.lease_seconds = settings.beat_lease_seconds
        url, wait = settings.resolved_store_url, settings.schema_wait_seconds
        timeouts = DatabaseTimeouts.from_settings(settings)
        self.leases = Store.for_service(url, schema_wait=wait, timeouts=timeouts).leases
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.epoch: int | None = None
        before_task_publish.connect(self._stamp, weak=False)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        epoch = self.leases.hold(LEASE, self.holder, self.lease_seconds)
        if epoch != self.epoch:
            log.info("beat.lease", holder=self.holder, epoch=epoch, leading=epoch is not None)
        self.epoch = epoch
        renew_in = self.lease_seconds / 3
        if epoch is None:
            return renew_in  # another beat leads: look again before its lease could lapse
        return min(super().tick(*args, **kwargs), renew_in)

    def _stamp(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        if headers is not None and headers.get(BEAT_HEADER) and self.epoch is not None:
            headers[EPOCH_HEADER] = self.epoch

    def close(self) -> None:
        before_task_publish.disconnect(self._stamp)
        if self.epoch is not None:
            self.leases.release(LEASE, self.holder)
        super().close()


class BeatGuardedTask(Task):
    """A stage task that does nothing when sent under a beat epoch that is no longer current."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sent_under = getattr(self.request, EPOCH_HEADER, None)
        if sent_under is not None:
            from workers.runtime import system

            current = system().store.leases.epoch(LEASE)
            if current is not None and sent_under < current:
                log.warning("beat.stale_epoch", task=self.name, sent=sent_under, now=current)
                return {
                    "skipped": f"sent by a beat of epoch {sent_under}; the beat is at {current}"
                }
        return super().__call__(*args, **kwargs)
