"""The composition root: builds the store, collectors, detectors and actions from Settings.

Workers, the CLI and tests all start here, so each stage runs the same parts wherever it runs.
Parts that need Celery (the worker pools, the queue probe, the task registry and beat schedule)
are passed in from ``workers/``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog

from selfmend.collect.base import Collector
from selfmend.collect.celery_queues import CeleryCollector, CeleryProbe
from selfmend.collect.exporter_file import read_exporters
from selfmend.collect.postgres import PostgresCollector
from selfmend.collect.prometheus import PrometheusCollector
from selfmend.collect.push import PushCollector, push_buffer
from selfmend.collect.redis import RedisCollector
from selfmend.config import Settings
from selfmend.detect.analyze import Analyzer, AnalyzeSettings
from selfmend.detect.catalogue import BUILTIN_PATTERNS, with_user_patterns
from selfmend.detect.multivariate import ServiceForest
from selfmend.detect.pattern_file import check_actions, read_patterns
from selfmend.detect.patterns import Pattern
from selfmend.detect.task_names import TaskRegistry
from selfmend.detect.unregistered import TaskCheckSources, TaskNameCheck
from selfmend.errors import ConfigurationError, is_interruption
from selfmend.remedy.actions.breaker_force import BreakerForce
from selfmend.remedy.actions.breaker_thresholds import BreakerThresholds
from selfmend.remedy.actions.cache_ttl import CacheTTL
from selfmend.remedy.actions.cache_warm import CacheWarm
from selfmend.remedy.actions.celery_autoscale import CeleryAutoscale
from selfmend.remedy.actions.celery_pool import CeleryPool
from selfmend.remedy.actions.celery_pool_restart import CeleryPoolRestart
from selfmend.remedy.actions.celery_ports import TaskControl, WorkerPools
from selfmend.remedy.actions.celery_rate_limit import CeleryRateLimit
from selfmend.remedy.actions.celery_revoke import CeleryRevokeStuck
from selfmend.remedy.actions.feature_flag import FeatureFlag
from selfmend.remedy.actions.postgres_analyze import PgAnalyze
from selfmend.remedy.actions.postgres_blockers import PgEndBlockers
from selfmend.remedy.actions.postgres_connection_holders import PgConnectionHolders
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.actions.postgres_index import PgCreateIndex
from selfmend.remedy.actions.postgres_sessions import PgCancelQueries, PgEndIdleTransactions
from selfmend.remedy.actions.set_control import SetControl
from selfmend.remedy.actions.task_alias import TaskAlias
from selfmend.remedy.backlog import Backlog, Due
from selfmend.remedy.catalogue import Catalogue
from selfmend.remedy.executor import Executor
from selfmend.remedy.notify import Webhook, deliver
from selfmend.remedy.plugins import ActionFactory, plugin_actions
from selfmend.resilience.breaker.control import BreakerControl
from selfmend.resilience.breaker.registry import registry_for
from selfmend.resilience.schema.databases import watched_databases
from selfmend.resilience.schema.watch import SchemaWatch
from selfmend.stage_limits import stage_limit
from selfmend.store import Store
from selfmend.store.claims import Caps
from selfmend.store.engine import DatabaseTimeouts
from selfmend.store.retention import Retention, RetentionPolicy
from selfmend.store.task_aliases import TaskAliasStore
from selfmend.verify import Verifier

log = structlog.get_logger(__name__)


@dataclass
class System:
    settings: Settings
    store: Store
    patterns: tuple[Pattern, ...] = BUILTIN_PATTERNS
    worker_pools: WorkerPools | None = None
    task_control: TaskControl | None = None
    celery_probe: CeleryProbe | None = None
    task_registry: TaskRegistry | None = None
    beat_schedule: Mapping[str, Any] = field(default_factory=dict)
    action_factories: tuple[ActionFactory, ...] = ()
    pull_collectors: list[Collector] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, **parts: Any) -> System:
        """Build the system; a bad pattern stops the start here, naming what to fix.

        The user's patterns file (``SELFMEND_PATTERNS_FILE``) is laid over the built-in patterns
        unless ``patterns`` are given; it is checked either way.
        """
        user = read_patterns(settings.patterns_file) if settings.patterns_file else ()
        parts.setdefault("patterns", with_user_patterns(BUILTIN_PATTERNS, user))
        if settings.learn_warm_up_seconds is not None:
            warm_up = settings.learn_warm_up_seconds
            parts["patterns"] = tuple(
                p.with_learning(lambda learn: learn.warming_up_for(warm_up))
                for p in parts["patterns"]
            )
        store = Store.for_service(
            settings.resolved_store_url,
            schema_wait=settings.schema_wait_seconds,
            timeouts=DatabaseTimeouts.from_settings(settings),
        )
        system = cls(settings, store, **parts)
        system.pull_collectors = system._pull_collectors()
        known = system.catalogue.params_models()
        check_actions(user, known, source=str(settings.patterns_file))
        check_actions(system.patterns, known, source="patterns in use")
        return system

    def _pull_collectors(self) -> list[Collector]:
        collectors: list[Collector] = [RedisCollector(u) for u in self.settings.monitor_redis_urls]
        collectors += [
            PostgresCollector(u, timeouts=self.database_timeouts)
            for u in self.settings.monitor_postgres_urls
        ]
        exporters = read_exporters(self.settings.exporters_file)
        collectors += [
            PrometheusCollector(u, exporters=exporters) for u in self.settings.prometheus_targets
        ]
        if self.celery_probe is not None:
            collectors.append(CeleryCollector(self.celery_probe))
        return collectors

    @property
    def database_timeouts(self) -> DatabaseTimeouts:
        """The bounds every engine has: the store's, and those to monitored or watched databases."""
        return DatabaseTimeouts.from_settings(self.settings)

    @cached_property
    def catalogue(self) -> Catalogue:
        """The allow-list: the built-in actions, those of ``action_factories``, and the user's
        actions from the ``selfmend.actions`` entry point group."""
        aliases = TaskAlias(TaskAliasStore(self.store.controls), self.task_registry)
        databases = MonitoredDatabases(self.settings.monitor_postgres_urls, self.database_timeouts)
        cache = self._cache_redis()
        built_in = [
            CacheWarm(cache, self._cache_index(cache)),
            CacheTTL(cache, self.store.controls),
            SetControl(
                self.store.controls,
                self.store.settings_read,
                lookback_seconds=self.settings.control_read_lookback_hours * 3600,
            ),
            FeatureFlag(self.store.controls),
            CeleryPool(self.worker_pools),
            aliases,
            PgCancelQueries(databases),
            PgEndIdleTransactions(databases),
            PgConnectionHolders(databases),
            PgEndBlockers(databases),
            PgAnalyze(databases),
            PgCreateIndex(databases, self.settings.index_build_timeout_seconds),
            CeleryAutoscale(self.worker_pools),
            CeleryPoolRestart(self.worker_pools),
            CeleryRateLimit(self.task_control),
            CeleryRevokeStuck(self.task_control),
            BreakerForce(self.breakers),
            BreakerThresholds(self.breakers),
        ]
        given = [factory(self.store) for factory in self.action_factories]
        return Catalogue([*built_in, *given, *plugin_actions(self.store)])

    @cached_property
    def breakers(self) -> BreakerControl:
        """The deployment's circuit breakers by name, as the actions that hold and tune them
        see them: the storage the application's client uses, transitions stored."""
        return registry_for(self.settings, self.store).control

    def _cache_redis(self) -> Any | None:
        if not self.settings.cache_redis_url:
            return None
        import redis

        return redis.Redis.from_url(self.settings.cache_redis_url, socket_timeout=10)

    def _cache_index(self, cache: Any | None) -> Any | None:
        """Where the client keeps the cache's recent keys and warm requests (``selfmend.cache``):
        selfmend's Redis when there is one, else the cache itself."""
        if not self.settings.redis_url or cache is None:
            return cache
        import redis

        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=10)

    @cached_property
    def push(self) -> PushCollector:
        return PushCollector(
            push_buffer(self.settings, self.store),
            self.store,
            max_skew=self.settings.max_clock_skew_seconds,
        )

    @cached_property
    def analyzer(self) -> Analyzer:
        settings = AnalyzeSettings(
            detectors=tuple(self.settings.detectors),
            clear_points=self.settings.anomaly_clear_points,
            group_seconds=self.settings.incident_group_seconds,
            root_cause_tolerance=self.settings.root_cause_tolerance_seconds,
            flap_seconds=self.settings.flap_window_seconds,
            services=tuple(self.settings.multivariate_services),
            forest=ServiceForest(bucket_seconds=self.settings.multivariate_bucket_seconds),
        )
        return Analyzer(self.store, self.patterns, settings)

    @cached_property
    def executor(self) -> Executor:
        return Executor(
            self.store,
            self.catalogue,
            self.patterns,
            mode=self.settings.mode,
            cooldown_seconds=self.settings.cooldown_seconds,
            flap_reopens=self.settings.flap_reopens,
            caps=Caps(
                concurrent=self.settings.max_concurrent_remediations,
                per_hour=self.settings.max_actions_per_hour,
            ),
        )

    @cached_property
    def backlog(self) -> Backlog:
        return Backlog(
            self.store,
            retry_seconds=self.settings.retry_seconds,
            approval_timeout_seconds=self.settings.approval_timeout_seconds,
            verification_seconds=self.verifier.longest_wait,
            redelivery_seconds=self.settings.visibility_timeout_seconds,
            rollbacks=self.verifier.rollbacks,
        )

    def analyze(self, shard: int = 0, shards: int = 1, now: float | None = None) -> dict[str, Any]:
        """One analyze pass and, on the first shard, the backlog's sweep: the incidents to start
        remediating now are ``new_incidents`` and ``due``."""
        now = time.time() if now is None else now
        report = self.analyzer.run(now=now, shard=shard, shards=shards).as_dict()
        due = self.backlog.sweep(now) if shard == 0 else Due()
        return {**report, **asdict(due), "due": due.to_remediate}

    @cached_property
    def verifier(self) -> Verifier:
        return Verifier(
            self.store,
            self.catalogue,
            self.patterns,
            settle_seconds=self.settings.settle_seconds,
            window_seconds=self.settings.verify_window_seconds,
            min_samples=self.settings.verify_min_samples,
        )

    @cached_property
    def task_check(self) -> TaskNameCheck:
        if self.task_registry is None:
            raise ConfigurationError(
                "the integration check asks the workers what they registered: build the "
                "System with a task_registry (workers.control.CeleryTaskRegistry)"
            )
        sources = TaskCheckSources(
            schedule=self.beat_schedule,
            source_paths=tuple(map(Path, self.settings.task_check_paths)),
            log_window=self.settings.task_check_log_window,
        )
        aliases = TaskAliasStore(self.store.controls)
        return TaskNameCheck(self.store, self.task_registry, aliases, sources)

    def check_task_names(self, now: float | None = None) -> dict[str, Any]:
        """One run of the integration check: incidents for unregistered task names, each with
        the alias it proposes, and the incidents of names no longer seen resolved."""
        now = time.time() if now is None else now
        findings = self.task_check.findings(now)
        report = self.analyzer.raise_signals(self.task_check.signals(findings, now), now)
        report.cleared += self.task_check.resolve_gone(findings)
        found = [{"name": f.name, "suggestion": f.suggestion, "count": f.count} for f in findings]
        return {"findings": found, **report.as_dict()}

    @cached_property
    def schema_watch(self) -> SchemaWatch:
        databases = watched_databases(
            self.settings.resolved_schema_watch_urls, self.database_timeouts
        )
        return SchemaWatch(self.store, databases)

    def watch_schemas(self) -> dict[str, Any]:
        """One run of the schema watch: a new version per database whose schema changed, its
        changes with their severity, and an incident per critical change (in
        ``new_incidents``, for the remediate stage to escalate)."""
        return self.schema_watch.run().as_dict()

    def notify(self, now: float | None = None) -> dict[str, int]:
        """Deliver the outbox's due messages to the webhook, if one is set."""
        url, timeout = self.settings.webhook_url, self.settings.webhook_timeout_seconds
        sender = Webhook(url, timeout) if url else None
        return deliver(self.store, sender, time.time() if now is None else now)

    @cached_property
    def retention(self) -> Retention:
        settings = self.settings
        policy = RetentionPolicy(
            raw_hours=settings.raw_retention_hours,
            minute_hours=settings.minute_retention_hours,
            hour_hours=settings.hour_retention_hours,
            event_hours=settings.event_retention_hours,
            # A key set_control may still find read must outlive its lookback.
            settings_read_hours=max(
                settings.event_retention_hours, settings.control_read_lookback_hours
            ),
            audit_archive_hours=settings.audit_archive_hours,
            batch_rows=settings.retention_batch_rows,
            # Inside the stage's soft time limit (which shrinks with a short visibility
            # timeout) and half the interval, so runs never pile up; what is left waits for
            # the next run.
            budget_seconds=min(
                0.8 * stage_limit(settings, "retention").soft, settings.retention_interval / 2
            ),
        )
        return Retention(self.store.engine, policy)

    def retain(self, now: float | None = None) -> dict[str, Any]:
        """One retention run: raw samples past their retention rolled up into minute and hour
        aggregates, the audit log of old incidents archived, the rest pruned by age."""
        return self.retention.run(now).as_dict()

    def collect(self) -> dict[str, Any]:
        """One collect pass: drain pushed samples, then every pull collector, each isolated."""
        report: dict[str, Any] = {"push": self.push.drain().as_dict(), "pulled": {}, "errors": {}}
        for collector in self.pull_collectors:
            try:
                samples = collector.collect()
                report["pulled"][collector.name] = self.store.samples.insert(samples)
            except Exception as error:  # one broken target must not stop the others
                if is_interruption(error):
                    raise
                log.exception("collector.failed", collector=collector.name)
                report["errors"][collector.name] = f"{type(error).__name__}: {error}"
        return report
