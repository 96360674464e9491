"""Pattern rules: deterministic conditions over recent samples or log lines, each with its fix.

A metric condition aggregates one series over a window (``max(cache.hit_ratio, 30 s) < 0.8``
reads "below 0.8 for the last 30 s") and needs samples spanning half the window, so one stray
point cannot fire it. A composite condition joins metric conditions over one or more series
(``all`` must hold, or ``any``). The same metric conditions judge the fix: ``holds`` on fresh
samples. The built-in patterns are in ``catalogue.toml``, read by ``pattern_file``.
"""

from __future__ import annotations

import json
import operator
import re
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from selfmend.models import Risk, Severity, parse_series_key, series_key

Aggregate = Literal["last", "mean", "min", "max", "p50", "p95", "p99", "count", "rate"]
Comparison = Literal[">", ">=", "<", "<="]

SeriesReader = Callable[[str, float], Mapping[str, Sequence[tuple[float, float]]]]
"""Every series of a name, whatever its labels: key → ``(ts, value)`` since a time, oldest first."""

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


def _rate(times: np.ndarray, values: np.ndarray) -> float:
    """Per-second increase of a cumulative counter; a drop means it restarted from zero."""
    steps = np.diff(values)
    increase = float(np.where(steps >= 0, steps, values[1:]).sum())
    span = float(times[-1] - times[0])
    return increase / span if span > 0 else 0.0


def _exact(number: float) -> str:
    """A threshold as written: ``1200000000``, ``0.8``, never rounded to ``1.2e+09``."""
    return str(int(number)) if number.is_integer() else repr(number)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricCondition(_Strict):
    kind: Literal["metric"] = "metric"
    series: str = Field(min_length=1, description="Series name; any labels unless filtered.")
    labels: dict[str, str] = Field(default_factory=dict)
    aggregate: Aggregate
    window: float = Field(
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="Seconds of samples the aggregate reads.",
    )
    op: Comparison
    threshold: float = Field(strict=True, allow_inf_nan=False)

    def evaluate(self, points: Sequence[tuple[float, float]], now: float) -> float | None:
        """The aggregate, or None when the samples do not cover enough of the window."""
        recent = [(ts, value) for ts, value in points if ts > now - self.window]
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < self.window / 2:
            return None
        return self.aggregate_of(recent)

    def aggregate_of(self, points: Sequence[tuple[float, float]]) -> float:
        """The aggregate of ``(ts, value)`` points, oldest first: ``rate`` needs the times."""
        times, values = np.asarray(points, dtype=float).reshape(-1, 2).T
        if self.aggregate == "rate":
            return _rate(times, values)
        return _AGGREGATES[self.aggregate](values)

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.threshold)

    def holding(self, read: SeriesReader, now: float) -> dict[str, float]:
        """The series this condition holds on now: key → the aggregate that made it hold."""
        found = {}
        for key, points in read(self.series, now - self.window).items():
            if not self.selects(key):
                continue
            value = self.evaluate(points, now)
            if value is not None and self.holds(value):
                found[key] = value
        return found

    def selects(self, key: str) -> bool:
        """Whether the series ``key`` is one this condition reads: its name, with its labels."""
        name, labels = parse_series_key(key)
        return name == self.series and self.labels.items() <= labels.items()

    def metric_conditions(self) -> tuple[MetricCondition, ...]:
        return (self,)

    def compressed(self, factor: float) -> MetricCondition:
        """The same condition over a window ``factor`` times shorter (time running faster)."""
        return self.model_copy(update={"window": self.window / factor})

    def describe(self) -> str:
        series = series_key(self.series, self.labels)
        return f"{self.aggregate}({series}, {self.window:g}s) {self.op} {_exact(self.threshold)}"


class CompositeCondition(_Strict):
    """Metric conditions over one or more series: ``all`` of them hold, or ``any`` does.

    ``all`` fires on each series its first condition holds on, when every other condition holds
    on a series whose labels agree with it (a label both carry has one value), so two Redis
    series are judged on the same instance. ``any`` fires on each series a condition holds on.
    """

    kind: Literal["all", "any"]
    of: list[MetricCondition] = Field(min_length=2)

    def holding(self, read: SeriesReader, now: float) -> dict[str, float]:
        if self.kind == "any":
            return dict(ChainMap(*(condition.holding(read, now) for condition in self.of)))
        first, *others = self.of
        found = first.holding(read, now)
        for other in others:
            if not found:
                break
            held = other.holding(read, now)
            found = {key: value for key, value in found.items() if _agrees(key, held)}
        return found

    def metric_conditions(self) -> tuple[MetricCondition, ...]:
        return tuple(self.of)

    def compressed(self, factor: float) -> CompositeCondition:
        return self.model_copy(
            update={"of": [condition.compressed(factor) for condition in self.of]}
        )

    def describe(self) -> str:
        joiner = " and " if self.kind == "all" else " or "
        return joiner.join(condition.describe() for condition in self.of)


def _agrees(key: str, others: Mapping[str, float]) -> bool:
    """Whether some series of ``others`` agrees with ``key``: no label both carry differs."""
    _, labels = parse_series_key(key)
    for other in others:
        _, other_labels = parse_series_key(other)
        if all(labels.get(name, value) == value for name, value in other_labels.items()):
            return True
    return False


class LogCondition(_Strict):
    kind: Literal["log"]
    regex: str = Field(min_length=1)
    level: str = "ERROR"
    window: float = Field(gt=0, strict=True, allow_inf_nan=False)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as error:
            raise ValueError(f"is not a valid regular expression: {error}") from error
        return regex

    def metric_conditions(self) -> tuple[MetricCondition, ...]:
        return ()

    def compressed(self, factor: float) -> LogCondition:
        return self.model_copy(update={"window": self.window / factor})

    def describe(self) -> str:
        return f"{self.level} log line matching /{self.regex}/ within {self.window:g}s"


CONDITION_TAGS = ("metric", "composite", "log")


def _condition_tag(condition: Any) -> str:
    if isinstance(condition, dict):
        kind = condition.get("kind", "metric")
    else:
        kind = getattr(condition, "kind", "metric")
    return "composite" if kind in ("all", "any") else kind


Condition = Annotated[
    Annotated[MetricCondition, Tag("metric")]
    | Annotated[CompositeCondition, Tag("composite")]
    | Annotated[LogCondition, Tag("log")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition_kind",
        custom_error_message="kind must be metric (the default), all, any or log",
    ),
]


class ActionSpec(_Strict):
    """Which allow-listed action fixes a pattern, with its parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    risk: Risk | None = Field(None, description="Raise the action's own risk; never lowers it.")

    def describe(self) -> str:
        params = [f"{key}={json.dumps(value)}" for key, value in self.params.items()]
        risk = [f"(risk {self.risk})"] if self.risk else []
        return " ".join([self.name, *params, *risk])


class Pattern(_Strict):
    """A condition, and the fixes that may clear it: ``action`` for one, ``actions`` for several
    candidates, which the remediate stage ranks by how often each fixed this pattern before and
    tries in turn while verification fails. No fix: the incident goes to a person."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    condition: Condition
    severity: Severity
    actions: tuple[ActionSpec, ...] = ()
    why: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_action_or_candidates(cls, data: Any) -> Any:
        if isinstance(data, dict) and "action" in data:
            if "actions" in data:
                raise ValueError("give action (one fix) or actions (candidates), not both")
            data = {**data, "actions": [data["action"]]}
            del data["action"]
        return data

    @field_validator("actions")
    @classmethod
    def _verifiable(
        cls, actions: tuple[ActionSpec, ...], info: ValidationInfo
    ) -> tuple[ActionSpec, ...]:
        """A fix is judged on fresh samples of the incident's series; a log line has none."""
        if actions and isinstance(info.data.get("condition"), LogCondition):
            raise ValueError(
                "a log condition has no series to verify a fix on: leave the action out, "
                "and the incident goes to a person"
            )
        names = [action.name for action in actions]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]} is a candidate twice; each action is tried once")
        return actions

    def describe_fix(self) -> str:
        return " or ".join(action.describe() for action in self.actions) or "escalate"


@dataclass(frozen=True)
class Match:
    """A pattern that fired: on which target, with the value and evidence that made it fire."""

    pattern: Pattern
    target: str
    value: float
    evidence: dict[str, Any]
