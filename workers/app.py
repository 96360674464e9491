"""The Celery app factory: broker, backend, JSON only, one queue per stage, the beat schedule."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from schedules import build_schedule
from selfmend.config import Settings
from workers.limits import annotations, stage_limits

EMBEDDED_TRANSPORT = "workers.filebroker:Transport"
STAGES = (
    "collect",
    "analyze",
    "remediate",
    "verify",
    "check_tasks",
    "notify",
    "schema.watch",
    "retention",
)
# A stage's module is its name, dots as underscores: selfmend.schema.watch is tasks.schema_watch.
TASK_MODULES = [f"tasks.{stage.replace('.', '_')}" for stage in STAGES]


def queue_name(stage: str) -> str:
    return f"selfmend.{stage}"


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    limits = stage_limits(settings, STAGES)  # refused here, not when a stage runs too long
    app = Celery("selfmend", include=TASK_MODULES, task_cls="workers.limits:StageTask")
    settings.home.mkdir(parents=True, exist_ok=True)
    app.conf.update(
        broker_url=settings.resolved_broker_url,
        broker_transport=EMBEDDED_TRANSPORT if settings.embedded_broker else None,
        broker_transport_options=settings.broker_transport_options(),
        broker_connection_retry_on_startup=True,
        # A broker that restarts, or stays down a while, is waited for however long it takes:
        # Celery's default gives up after 100 attempts (about 50 minutes at 30 s apart), and a
        # beat whose first send gives up so ends its schedule.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        result_backend=settings.resolved_result_backend,
        result_extended=True,
        # Pickle lets anyone who can write to the broker run code: JSON only, everywhere.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        task_queues=[Queue(queue_name(stage)) for stage in STAGES],
        task_default_queue=queue_name("collect"),
        task_routes={f"selfmend.{stage}": {"queue": queue_name(stage)} for stage in STAGES},
        task_track_started=True,
        task_annotations=annotations(limits),
        # A late-acked task whose connection is lost is redelivered, so stop running it here.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule=build_schedule(settings),
        beat_scheduler="workers.beat:LeaderScheduler",
        beat_schedule_filename=str(settings.home.resolve() / "beat-schedule"),
        timezone="UTC",
    )
    app.selfmend_settings = settings
    return app
