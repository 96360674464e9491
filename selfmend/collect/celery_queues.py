"""Celery collector: queue depth per queue and tasks running, through a probe of the Celery app.

The probe is passed in (``workers.probe`` builds the real one) so this core stays free of Celery.
"""

from __future__ import annotations

from typing import Protocol

from selfmend.collect.base import samples_at
from selfmend.models import Sample

SERIES = ("celery.queue_depth", "celery.active_tasks")
"""Every series this collector emits."""


class CeleryProbe(Protocol):
    def queue_depths(self) -> dict[str, int]:
        """Messages waiting, per queue."""

    def active_tasks(self) -> int | None:
        """Tasks executing on all workers now; None when no worker answered."""


class CeleryCollector:
    name = "celery"

    def __init__(self, probe: CeleryProbe) -> None:
        self.probe = probe

    def collect(self) -> list[Sample]:
        samples = samples_at(None, {"celery.active_tasks": self.probe.active_tasks()}, {})
        for queue, depth in self.probe.queue_depths().items():
            samples += samples_at(None, {"celery.queue_depth": depth}, {"queue": queue})
        return samples
