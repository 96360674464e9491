"""The beat: sends the stages on schedule only while it holds the store's beat lease.

A second beat (started by mistake, or the new one of a rolling deploy) finds the lease held and
sends nothing until the first one's lapses. Every message the beat sends carries the lease's
epoch; a stage task compares it with the epoch now (``BeatGuardedTask``), so a beat that was
paused past its lease and wakes believing it still leads sends only work that does nothing.

A beat that cannot reach the store cannot confirm its lease, so it sends nothing, says so, and
asks again every third of a lease: a restart of the store pauses the schedule, never ends it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

import structlog
from celery import Task
from celery.beat import PersistentScheduler
from celery.signals import before_task_publish
from sqlalchemy.exc import SQLAlchemyError

from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts

log = structlog.get_logger(__name__)

LEASE = "beat"
EPOCH_HEADER = "selfmend_beat_epoch"
BEAT_HEADER = "celery_beat_task"  # what Celery's beat puts on every message it sends
STORE_ERROR_EVERY = 60.0  # seconds between reports while the store stays out of reach


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
        self.store_lost_at: float | None = None  # monotonic; None while the store answers
        self.store_reported_at = 0.0
        before_task_publish.connect(self._stamp, weak=False)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_in = self.lease_seconds / 3
        try:
            epoch = self.leases.hold(LEASE, self.holder, self.lease_seconds)
        except SQLAlchemyError as error:
            # Celery's beat loop ends on any error from a tick, and the worker of ``-B`` lives
            # on scheduling nothing: here the beat only stops leading until the store is back.
            self._report_store_error(error, renew_in)
            epoch = None
        else:
            self._report_store_back()
        if epoch != self.epoch:
            log.info("beat.lease", holder=self.holder, epoch=epoch, leading=epoch is not None)
        self.epoch = epoch
        if epoch is None:
            return renew_in  # another beat leads, or none can tell: look again soon
        return min(super().tick(*args, **kwargs), renew_in)

    def _report_store_error(self, error: SQLAlchemyError, retry_in: float) -> None:
        """Logged when the store first fails the beat, then once every ``STORE_ERROR_EVERY``
        seconds while it stays out of reach, not on every tick."""
        now = time.monotonic()
        if self.store_lost_at is None:
            self.store_lost_at = now
        elif now - self.store_reported_at < STORE_ERROR_EVERY:
            return
        self.store_reported_at = now
        log.error(
            "beat.store_unreachable",
            detail="cannot hold the beat lease in the store: the beat sends nothing until the "
            f"store is back, and is retrying every {retry_in:g} s",
            down_for=round(now - self.store_lost_at, 1),
            error=_first_line(error),
        )

    def _report_store_back(self) -> None:
        if self.store_lost_at is not None:
            down_for = round(time.monotonic() - self.store_lost_at, 1)
            log.info("beat.store_back", holder=self.holder, down_for=down_for)
            self.store_lost_at = None

    def _stamp(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        if headers is not None and headers.get(BEAT_HEADER) and self.epoch is not None:
            headers[EPOCH_HEADER] = self.epoch

    def close(self) -> None:
        before_task_publish.disconnect(self._stamp)
        if self.epoch is not None:
            try:
                self.leases.release(LEASE, self.holder)
            except SQLAlchemyError as error:  # stopping anyway: the lease lapses by itself
                log.warning("beat.lease_not_released", error=_first_line(error))
        super().close()


def _first_line(error: SQLAlchemyError) -> str:
    """The driver's message alone, not SQLAlchemy's statement and parameters after it."""
    return str(getattr(error, "orig", None) or error).splitlines()[0]


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
