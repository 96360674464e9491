"""/metrics: what the store knows, as Prometheus metrics read at scrape time.

The figures come from the store, not from counters in this process, so every API replica
reports the same numbers and nothing resets when a worker restarts; Flower has no queue-depth
metric, so the queue depth the collector last measured is exported here too. The audit log's
counters come from its summary (``store/summary.py``): a scrape reads the rows since the last
fold, not the whole log, and a pruned or archived row still counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from selfmend.models import parse_series_key
from selfmend.store import Store
from selfmend.store.summary import StepCounts

QUEUE_DEPTH = "celery.queue_depth"
QUEUE_DEPTH_MAX_AGE = 300.0  # a queue no sample named for this long is no longer reported


class StoreMetrics:
    """A prometheus_client collector over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.steps = StepCounts(store.engine)

    def collect(self) -> Iterator[Metric]:
        incidents = GaugeMetricFamily(
            "selfmend_incidents", "Incidents by status.", labels=["status"]
        )
        for status, count in sorted(self.store.incidents.count_by_status().items()):
            incidents.add_metric([status], count)
        yield incidents

        steps = CounterMetricFamily(
            "selfmend_execution_steps",
            "Audit log rows by action and state (planned, skipped, applied, rolled_back…).",
            labels=["action", "state"],
        )
        for (action, state), count in sorted(self.steps.counts().items()):
            steps.add_metric([action, state], count)
        yield steps

        verdicts = CounterMetricFamily(
            "selfmend_verifications",
            "Verifications by pattern, action and verdict.",
            labels=["pattern", "action", "verdict"],
        )
        confidence = GaugeMetricFamily(
            "selfmend_fix_confidence",
            "Posterior mean of Beta(1 + fixed, 1 + not fixed): how likely the action fixes it.",
            labels=["pattern", "action"],
        )
        for row in self.store.outcomes.confidence():
            labels = [row["name"], row["action"]]
            verdicts.add_metric([*labels, "fixed"], row["successes"])
            verdicts.add_metric([*labels, "not_fixed"], row["failures"])
            confidence.add_metric(labels, row["confidence"])
        yield verdicts
        yield confidence

        depth = GaugeMetricFamily(
            "selfmend_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        windows = self.store.samples.windows_by_name(
            [QUEUE_DEPTH], time.time() - QUEUE_DEPTH_MAX_AGE
        )
        for key, points in sorted(windows(QUEUE_DEPTH, 0.0).items()):
            depth.add_metric([parse_series_key(key)[1].get("queue", "")], points[-1][1])
        yield depth

        yield GaugeMetricFamily(
            "selfmend_kill_switch",
            "1 while the global kill switch is on.",
            value=float(self.store.controls.kill_switch()),
        )
        yield GaugeMetricFamily(
            "selfmend_notifications_unsent",
            "Messages in the outbox not yet taken by the webhook.",
            value=self.store.notifications.unsent_count(),
        )


def registry(store: Store) -> CollectorRegistry:
    """A registry of the store's metrics only (not this process's own)."""
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(StoreMetrics(store))
    return metrics
