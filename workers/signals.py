"""Worker signal handlers: logging set-up, fresh connections after fork, task ids in logs."""

from __future__ import annotations

import structlog
from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_init

from workers import runtime
from workers.logs import configure_logging


@setup_logging.connect
def _setup_logging(loglevel: str | int | None = None, **_: object) -> None:
    configure_logging(loglevel or "INFO")


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    runtime.reset()


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: object = None, **_: object) -> None:
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@task_postrun.connect
def _unbind_task(**_: object) -> None:
    structlog.contextvars.clear_contextvars()
