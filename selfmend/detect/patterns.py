"""Pattern rules: deterministic conditions over recent samples or log lines, each with its fix.

A metric condition aggregates one series over a window (``max(cache.hit_ratio, 30 s) < 0.8``
reads "below 0.8 for the last 30 s") and needs samples spanning half the window, so one stray
point cannot fire it. The same condition judges the fix: ``holds`` on fresh samples.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from selfmend.models import Risk, Severity

Aggregate = Literal["last", "mean", "min", "max", "p50", "p95", "p99", "count"]
Comparison = Literal[">", ">=", "<", "<="]

_AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "last": lambda v: float(v[-1]),
    "mean": lambda v: float(np.mean(v)),
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
    "p50": lambda v: float(np.percentile(v, 50)),
    "p95": lambda v: float(np.percentile(v, 95)),
    "p99": lambda v: float(np.percentile(v, 99)),
    "count": lambda v: float(v.size),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricCondition(_Strict):
    kind: Literal["metric"] = "metric"
    series: str = Field(min_length=1, description="Series name; any labels unless filtered.")
    labels: dict[str, str] = Field(default_factory=dict)
    aggregate: Aggregate
    window: float = Field(gt=0, description="Seconds of samples the aggregate reads.")
    op: Comparison
    threshold: float = Field(allow_inf_nan=False)

    def evaluate(self, points: Sequence[tuple[float, float]], now: float) -> float | None:
        """The aggregate, or None when the samples do not cover enough of the window."""
        recent = [(ts, value) for ts, value in points if ts > now - self.window]
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < self.window / 2:
            return None
        return self.aggregate_of([value for _, value in recent])

    def aggregate_of(self, values: Sequence[float]) -> float:
        return _AGGREGATES[self.aggregate](np.asarray(values, dtype=float))

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.threshold)

    def describe(self) -> str:
        return f"{self.aggregate}({self.series}, {self.window:g}s) {self.op} {self.threshold:g}"


class LogCondition(_Strict):
    kind: Literal["log"]
    regex: str = Field(min_length=1)
    level: str = "ERROR"
    window: float = Field(gt=0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as error:
            raise ValueError(f"is not a valid regular expression: {error}") from error
        return regex

    def describe(self) -> str:
        return f"{self.level} log line matching /{self.regex}/ within {self.window:g}s"


def _condition_kind(condition: Any) -> str:
    if isinstance(condition, dict):
        return condition.get("kind", "metric")
    return getattr(condition, "kind", "metric")


class ActionSpec(_Strict):
    """Which allow-listed action fixes a pattern, with its parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    risk: Risk | None = Field(None, description="Raise the action's own risk; never lowers it.")


class Pattern(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    condition: Annotated[
        Annotated[MetricCondition, Tag("metric")] | Annotated[LogCondition, Tag("log")],
        Discriminator(_condition_kind),
    ]
    severity: Severity
    action: ActionSpec | None = None
    why: str = Field(min_length=1)


@dataclass(frozen=True)
class Match:
    """A pattern that fired: on which target, with the value and evidence that made it fire."""

    pattern: Pattern
    target: str
    value: float
    evidence: dict[str, Any]


BUILTIN_PATTERNS: tuple[Pattern, ...] = tuple(
    Pattern.model_validate(p)
    for p in [
        {
            "name": "slow_queries",
            "condition": {
                "series": "db.query_ms",
                "aggregate": "p95",
                "window": 60,
                "op": ">",
                "threshold": 200,
            },
            "severity": "medium",
            "action": {"name": "set_control", "params": {"key": "db.query_cache", "value": True}},
            "why": "optimize_query: p95 query time above 200 ms; serve repeated reads from the "
            "application's query cache.",
        },
        {
            "name": "cache_hit_ratio_low",
            "condition": {
                "series": "cache.hit_ratio",
                "aggregate": "max",
                "window": 30,
                "op": "<",
                "threshold": 0.8,
            },
            "severity": "medium",
            "action": {"name": "set_control", "params": {"key": "cache.warm", "value": True}},
            "why": "warm_cache: the application's cache hit ratio stayed under 0.8; warm it.",
        },
        {
            "name": "redis_hit_ratio_low",
            "condition": {
                "series": "redis.hit_ratio",
                "aggregate": "max",
                "window": 60,
                "op": "<",
                "threshold": 0.8,
            },
            "severity": "medium",
            "action": {"name": "set_control", "params": {"key": "cache.warm", "value": True}},
            "why": "warm_cache: Redis keyspace hit ratio stayed under 0.8; warm the cache.",
        },
        {
            "name": "db_connections_high",
            "condition": {
                "series": "postgres.connections",
                "aggregate": "min",
                "window": 30,
                "op": ">",
                "threshold": 40,
            },
            "severity": "high",
            "action": {
                "name": "set_control",
                "params": {"key": "db.pool_size", "delta": -20, "minimum": 5},
            },
            "why": "scale_pool: more than 40 database connections held; shrink the application's "
            "pool so the database is not overrun.",
        },
        {
            "name": "method_not_found",
            "condition": {"kind": "log", "regex": "method.*not found", "window": 120},
            "severity": "high",
            "action": None,
            "why": "verify_integration: a caller names a task or method no worker has; a person "
            "must check the integration.",
        },
        {
            "name": "celery_queue_backlog",
            "condition": {
                "series": "celery.queue_depth",
                "aggregate": "min",
                "window": 60,
                "op": ">",
                "threshold": 100,
            },
            "severity": "medium",
            "action": {"name": "celery_pool", "params": {"grow": 1}},
            "why": "grow_workers: over 100 messages waited for a minute; add a worker process.",
        },
    ]
)
