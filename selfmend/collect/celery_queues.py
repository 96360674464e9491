"""Celery collector: queue depth per queue, tasks running, and on the application's workers how
long each one's longest-running task has run, through a probe of a Celery app.

The probe is passed in (``workers.control`` builds the real one) so this core stays free of
Celery.
"""

from __future__ import annotations

import time
from typing import Protocol

from selfmend.collect.base import samples_at
from selfmend.models import Sample

SERIES = ("celery.queue_depth", "celery.active_tasks", "celery.longest_task_seconds")
"""Every series this collector emits."""


class CeleryProbe(Protocol):
    task_ages: bool
    """Whether the longest task's age is reported: only on the application's workers, whose
    stuck tasks selfmend may stop, never on selfmend's own stages (an index build runs long)."""

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting, per queue."""

    def running(self) -> dict[str, list[float]] | None:
        """Start times (epoch seconds) of the tasks running on each worker node that answered;
        None when none answered."""


class CeleryCollector:
    name = "celery"

    def __init__(self, probe: CeleryProbe) -> None:
        self.probe = probe

    def collect(self) -> list[Sample]:
        now = time.time()
        running = self.probe.running()
        count = None if running is None else sum(len(starts) for starts in running.values())
        samples = samples_at(now, {"celery.active_tasks": count}, {})
        if running is not None and self.probe.task_ages:
            for node, starts in running.items():
                age = {"celery.longest_task_seconds": longest(starts, now)}
                samples += samples_at(now, age, {"worker": node})
        for queue, depth in self.probe.queue_depths().items():
            samples += samples_at(now, {"celery.queue_depth": depth}, {"queue": queue})
        return samples


def longest(starts: list[float], now: float) -> float:
    """Seconds the oldest running task has run; 0 with none running, so a stuck task's end
    shows as the series going back down (the fix's verification needs fresh samples). A worker's
    clock ahead of this one's counts as 0, never as a negative age."""
    return max(0.0, now - min(starts, default=now))
