"""Settings: one object read from ``SELFMEND_*`` environment variables.

With nothing set, selfmend runs with no server at all: a SQLite store, a file-based Celery broker
and a SQLite result backend under ``SELFMEND_HOME``. Set the URLs to use Redis and PostgreSQL.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from selfmend.api.keys import AdminKey
from selfmend.config_errors import settings_error
from selfmend.detect.choice import DetectorChoice

Mode = Literal["observe", "dry_run", "auto"]

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything an operator can set; every field is ``SELFMEND_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SELFMEND_", frozen=True, extra="ignore")

    def __init__(self, **values: Any) -> None:
        """Refuse a malformed setting here, in one line naming its ``SELFMEND_*`` variable,
        rather than with pydantic's page about the field (``config_errors``)."""
        try:
            super().__init__(**values)
        except (ValidationError, SettingsError) as error:
            raise settings_error(error, type(self)) from None

    home: Path = Field(Path(".selfmend"), description="Folder for the embedded store and broker.")
    store_url: str | None = Field(None, description="SQLAlchemy URL of selfmend's own store.")
    broker_url: str | None = Field(None, description="Celery broker URL.")
    result_backend: str | None = Field(None, description="Celery result backend URL.")
    redis_url: str | None = Field(
        None, description="Redis for shared fast state (push buffer, locks); the store if unset."
    )

    cache_redis_url: str | None = Field(
        None, description="The application's cache, which selfmend warms and whose TTLs it moves."
    )
    breakers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Circuit breaker settings per service, a JSON object: "
        '{"payments": {"failure_threshold": 3}}; checked when the client builds its breakers.',
    )
    monitor_redis_urls: CommaList = Field(default_factory=list)
    monitor_postgres_urls: CommaList = Field(default_factory=list)
    monitor_celery_broker_url: str | None = Field(
        None,
        description="The application's Celery broker: the Celery collector and actions reach its "
        "workers there (remote control in JSON only); selfmend's own workers when unset.",
    )
    monitor_celery_queues: CommaList = Field(
        default_factory=lambda: ["celery"],
        min_length=1,
        description="The application's queues on monitor_celery_broker_url whose depth is watched.",
    )
    prometheus_targets: CommaList = Field(default_factory=list)
    exporters_file: Path | None = Field(
        None,
        description="TOML file of [[exporters]] naming the HTTP histogram and counter of an "
        "exporter the shipped mapping (selfmend/collect/exporters.toml) does not know; read first.",
    )
    multivariate_services: CommaList = Field(
        default_factory=list,
        description="Services (the `service` label) whose series are also judged together; "
        "`*` for every service.",
    )
    multivariate_bucket_seconds: float = Field(
        60.0, gt=0, description="Time bucket that lines a service's series up for the forest."
    )

    mode: Mode = Field("dry_run", description="observe: detect only; dry_run: plan and log; auto.")
    collect_interval: float = Field(15.0, gt=0)
    analyze_interval: float = Field(60.0, gt=0)
    settle_seconds: float = Field(30.0, ge=0, description="Wait after a fix before verifying.")
    verify_window_seconds: float = Field(
        30.0, gt=0, description="Fresh measurements the verdict looks at (the hold period)."
    )
    verify_min_samples: int = Field(3, ge=1)
    cooldown_seconds: float = Field(600.0, ge=0, description="Per (action, target).")
    control_read_lookback_hours: float = Field(
        24.0,
        gt=0,
        description="set_control changes only a live setting some application's client read "
        "within this; one nobody reads would change nothing.",
    )
    max_actions_per_hour: int = Field(
        20, ge=0, description="Actions applied in any hour, over every incident."
    )
    max_concurrent_remediations: int = Field(
        5, ge=1, description="Incidents being remediated or verified at once."
    )
    approval_timeout_seconds: float = Field(
        3600.0, gt=0, description="An approval request nobody answered escalates after this."
    )
    retry_seconds: float = Field(
        300.0,
        gt=0,
        description="A remediation held back (cooldown, cap, kill switch) is "
        "tried again after this; a lost remediate or verify is sent again this long past due.",
    )
    detectors: list[DetectorChoice] = Field(
        default_factory=list,
        description="Detectors by series-name glob, a JSON list; the default detector elsewhere.",
    )
    anomaly_clear_points: int = Field(
        3, ge=1, description="Latest points back in the band that resolve a detector's incident."
    )
    incident_group_seconds: float = Field(
        300.0, ge=0, description="Signals on related series this close join one incident."
    )
    root_cause_tolerance_seconds: float = Field(
        60.0, ge=0, description="Head start per dependency layer when ranking the root cause."
    )
    learn_warm_up_seconds: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="How long a learned pattern watches a new series before it may alarm on "
        "its band, for the patterns that do not set their own warm_up; unset: 30 minutes.",
    )
    flap_window_seconds: float = Field(3600.0, gt=0, description="Reopens counted over this.")
    flap_reopens: int = Field(3, ge=1, description="Reopens in the window that mean flapping.")
    beat_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="A beat holds its lease this long; a second beat takes over "
        "only after the first let it lapse.",
    )
    visibility_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="Redis broker: a message a worker took and did not acknowledge within this "
        "(it died) is delivered again. Keep it well above settle plus verify window.",
    )
    schema_wait_seconds: float = Field(
        120.0,
        ge=0,
        description="A worker, beat or API starting on a PostgreSQL store waits this long for "
        "`selfmend db upgrade` to bring the schema up to date, then stops saying so.",
    )
    max_clock_skew_seconds: float = Field(300.0, gt=0)
    database_connect_timeout_seconds: int = Field(
        10,
        ge=2,
        description="Every database engine (the store, the monitored and watched databases, "
        "the writer's) gives up connecting after this; PostgreSQL's connect_timeout, 2 s at least.",
    )
    database_statement_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A statement running longer is cancelled (PostgreSQL's statement_timeout); "
        "on SQLite, how long a statement waits for another writer's lock.",
    )
    index_build_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description="The statement timeout of pg_create_index's CREATE INDEX CONCURRENTLY alone, "
        "which takes longer than the store's reads; keep it under the remediate stage's limit.",
    )
    stage_time_limits: dict[str, float] = Field(
        default_factory=dict,
        description='Soft time limit in seconds per stage, a JSON object ({"analyze": 600}) laid '
        "over the defaults; the hard limit is 10% later. Both must stay under "
        "visibility_timeout_seconds; checked when the Celery app is created.",
    )
    push_batch_size: int = Field(500, ge=1)
    push_flush_seconds: float = Field(1.0, gt=0)
    series_shards: int = Field(1, ge=1, description="analyze fans out over this many shards.")
    patterns_file: Path | None = Field(
        None, description="TOML file of user patterns, laid over the built-in catalogue."
    )
    webhook_url: str | None = Field(
        None,
        description="Where escalations and approval requests go (Slack-compatible JSON); "
        "without it they wait in the store's outbox.",
    )
    admin_keys: list[AdminKey] = Field(
        default_factory=list,
        description='JSON list of {"name", "role": viewer|operator|admin, "key"} for the API.',
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    notify_interval: float = Field(10.0, gt=0, description="How often the outbox is delivered.")
    task_check_interval: float = Field(
        300.0, gt=0, description="How often the integration check looks for unregistered tasks."
    )
    task_check_paths: CommaList = Field(
        default_factory=list,
        description="The application's source folders, scanned for task names (never imported).",
    )
    task_check_log_window: float = Field(
        3600.0, gt=0, description="Seconds of stored log lines the integration check reads."
    )
    writer_model_url: str | None = Field(
        None,
        description="OpenAI-compatible API base (e.g. https://api.openai.com/v1) the resilient "
        "writer asks about a key no other rule heals; the model step is off when unset.",
    )
    writer_model_name: str = Field("gpt-4o-mini", description="The model the writer asks.")
    writer_model_api_key: SecretStr | None = Field(None, description="Bearer token, if needed.")
    writer_model_timeout_seconds: float = Field(5.0, gt=0)
    writer_promote_after: int = Field(
        3, ge=1, description="Same model heal seen this often, never rejected: a learned rule."
    )
    schema_watch_urls: CommaList = Field(
        default_factory=list,
        description="Databases (any SQLAlchemy URL) whose schema is versioned and watched; "
        "the monitored PostgreSQL databases when empty.",
    )
    schema_watch_interval: float = Field(
        300.0, gt=0, description="How often the schema watch fingerprints the databases."
    )
    retention_interval: float = Field(
        3600.0, gt=0, description="How often the retention stage rolls up and prunes the store."
    )
    raw_retention_hours: float = Field(
        24.0, gt=0, description="Raw samples are kept this long, then rolled up and deleted."
    )
    minute_retention_hours: float = Field(
        168.0, gt=0, description="Minute aggregates (min, max, mean, count) are kept this long."
    )
    hour_retention_hours: float = Field(
        2160.0, gt=0, description="Hour aggregates are kept this long."
    )
    event_retention_hours: float = Field(
        720.0,
        gt=0,
        description="Log lines, anomalies, sent notifications, breaker events and repeated "
        "skipped audit rows are kept this long.",
    )
    audit_archive_hours: float = Field(
        2160.0,
        gt=0,
        description="The audit rows of an incident closed this long ago move to the archive.",
    )
    retention_batch_rows: int = Field(20_000, ge=100, description="Rows per retention transaction.")

    @model_validator(mode="after")
    def _verify_before_redelivery(self) -> Settings:
        """A verify task waits settle plus hold window on the broker; on Redis, a message held
        past the visibility timeout is delivered a second time."""
        waited = self.settle_seconds + self.verify_window_seconds
        if self.visibility_timeout_seconds <= 2 * waited:
            raise ValueError(
                f"SELFMEND_VISIBILITY_TIMEOUT_SECONDS ({self.visibility_timeout_seconds:g}) must "
                "exceed twice SELFMEND_SETTLE_SECONDS + SELFMEND_VERIFY_WINDOW_SECONDS "
                f"({2 * waited:g}), or verify tasks are delivered twice"
            )
        return self

    @field_validator("monitor_celery_broker_url")
    @classmethod
    def _a_broker_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"[a-z][a-z0-9+.-]*://", url):
            raise ValueError("is not a broker URL; give transport://host, e.g. redis://host:6379/0")
        return url

    @model_validator(mode="after")
    def _celery_queues_need_a_broker(self) -> Settings:
        if "monitor_celery_queues" in self.model_fields_set and not self.monitor_celery_broker_url:
            raise ValueError(
                "SELFMEND_MONITOR_CELERY_QUEUES names the application's queues, but "
                "SELFMEND_MONITOR_CELERY_BROKER_URL, the broker they are on, is unset"
            )
        return self

    @field_validator("admin_keys")
    @classmethod
    def _distinct_admin_keys(cls, keys: list[AdminKey]) -> list[AdminKey]:
        for field in ("name", "key"):
            values = [getattr(key, field) for key in keys]
            if len(set(values)) != len(values):
                raise ValueError(f"two admin keys share a {field}; each needs its own")
        return keys

    @field_validator(
        "monitor_redis_urls",
        "monitor_postgres_urls",
        "monitor_celery_queues",
        "prometheus_targets",
        "multivariate_services",
        "task_check_paths",
        "schema_watch_urls",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_schema_watch_urls(self) -> list[str]:
        return self.schema_watch_urls or self.monitor_postgres_urls

    @cached_property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home.resolve() / 'store.db'}"

    @cached_property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://localhost//"

    @cached_property
    def resolved_result_backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.home.resolve() / 'results.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    def broker_transport_options(self) -> dict[str, object]:
        """The Redis broker's visibility timeout and how often workers look for messages past
        it, or the folders of the file-based broker (one folder in and out, as on one machine).

        kombu sweeps for messages whose worker died every 10 s but scans only on every 10th
        sweep; a sweep that scans, at most a fifth of the timeout apart, redelivers them soon
        after the timeout instead of up to 100 s later.
        """
        if not self.embedded_broker:
            return {
                "visibility_timeout": self.visibility_timeout_seconds,
                "unacked_restore_interval": min(10.0, self.visibility_timeout_seconds / 5),
                "unacked_restore_throttle": 1,
            }
        root = self.home.resolve() / "broker"
        for name in ("queue", "control"):
            (root / name).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            "store_processed": False,
        }
