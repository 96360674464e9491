"""The Celery workers selfmend watches and acts on: the application's, reached on its own broker
(``SELFMEND_MONITOR_CELERY_BROKER_URL``), else selfmend's own.

Selfmend's app reaches only selfmend's workers, so without the application's broker the Celery
collector sees selfmend's stage queues and the Celery actions resize, revoke and restart
selfmend's own pools. The application's workers are reached through a control-only app.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from selfmend.config import Settings
from workers.control import (
    CeleryQueueProbe,
    CeleryTaskControl,
    CeleryTaskRegistry,
    CeleryWorkerPools,
)


def control_app(broker_url: str) -> Celery:
    """An app that only speaks to the application's workers: remote control, inspect and
    queue depths on their broker. It registers no task and consumes nothing, and it sends and
    accepts JSON alone, so no reply is ever unpickled (a worker that answers in pickle is not
    heard)."""
    app = Celery("selfmend-watch", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        event_serializer="json",
    )
    return app


def celery_parts(app: Celery, settings: Settings) -> dict[str, Any]:
    """The System's Celery ports: on the application's workers when its broker is set, with its
    queues watched and its tasks' ages reported; else on ``app``'s own."""
    if settings.monitor_celery_broker_url is None:
        watched, probe = app, CeleryQueueProbe(app)
    else:
        watched = control_app(settings.monitor_celery_broker_url)
        probe = CeleryQueueProbe(watched, settings.monitor_celery_queues, task_ages=True)
    return {
        "worker_pools": CeleryWorkerPools(watched),
        "task_control": CeleryTaskControl(watched),
        "celery_probe": probe,
        # Selfmend's own workers register the names its beat schedule sends.
        "task_registry": CeleryTaskRegistry(*dict.fromkeys([app, watched])),
        "beat_schedule": app.conf.beat_schedule,
    }
