"""Metric conditions: one series' aggregate over a window against a limit, and ``all`` or ``any``
of several. A limit is a hard ``threshold`` a person sets, or learned from the series' own past
(``baseline``), or the tighter of both; a condition that holds says which limit it crossed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.detect.aggregates import COMPARE, Aggregate, Comparison, aggregate, exact
from selfmend.detect.baseline import (
    Band,
    BandReader,
    Learn,
    Stretch,
    unlearned,
    window_aggregates,
)
from selfmend.models import parse_series_key, series_key


class Strict(BaseModel):
    """Frozen, and an unknown key is refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SeriesReader = Callable[[str, float], Mapping[str, Sequence[tuple[float, float]]]]
"""Every series of a name, whatever its labels: key → ``(ts, value)`` since a time, oldest first."""


@dataclass(frozen=True)
class Held:
    """A condition holding on a series: the aggregate that made it hold, and per metric
    condition (by its description) the limit it crossed, which verification judges against."""

    value: float
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def joined(self, other: Held | None) -> Held:
        return self if other is None else Held(self.value, {**other.limits, **self.limits})

    def evidence(self) -> dict[str, Any]:
        return {"value": self.value, "limits": self.limits}


class MetricCondition(Strict):
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
    threshold: float | None = Field(
        None,
        strict=True,
        allow_inf_nan=False,
        description="A hard limit a person sets; with learn, it fires whatever the band says.",
    )
    learn: Learn | None = Field(None, description="Judge each series against its own band.")

    @model_validator(mode="after")
    def _has_a_limit(self) -> Self:
        if self.threshold is None and self.learn is None:
            raise ValueError(
                "give a threshold (a hard limit), or learn = {} to judge each series against "
                "its own usual band, or both"
            )
        return self

    def evaluate(self, points: Sequence[tuple[float, float]], now: float) -> float | None:
        """The aggregate, or None when the samples do not cover enough of the window."""
        recent = [(ts, value) for ts, value in points if ts > now - self.window]
        if not recent:
            return None
        return self._covered(*_arrays(recent))

    def aggregate_of(self, points: Sequence[tuple[float, float]]) -> float:
        """The aggregate of ``(ts, value)`` points, oldest first: ``rate`` needs the times."""
        return aggregate(self.aggregate, *_arrays(points))

    def _covered(self, times: np.ndarray, values: np.ndarray) -> float | None:
        if times.size < 2 or times[-1] - times[0] < self.window / 2:
            return None
        return aggregate(self.aggregate, times, values)

    def learned_band(
        self, points: Sequence[tuple[float, float]], until: float, faults: Sequence[Stretch] = ()
    ) -> Band | None:
        """The series' band from its windows ending at ``until`` (the current one left out, so
        a fault does not teach itself), but for those overlapping ``faults`` (an earlier fault
        does not become the usual either); None while the rest cover less than the warm-up."""
        if self.learn is None or not points:
            return None
        times, values = _arrays(points)
        aggregates, left_out = window_aggregates(
            times, values, self.window, until, self.learn.history, self._covered, faults
        )
        return self.learn.band(self.op, aggregates, self.window, left_out)

    def limit(self, key: str, bands: BandReader = unlearned) -> dict[str, Any] | None:
        """The limit the series ``key`` is judged against now, with what it came from: the
        tighter of the hard threshold and the learned band's limit; None while neither is set
        (a learned condition on a series still warming up)."""
        band = bands(self.describe(), key) if self.learn is not None else None
        candidates = [x for x in (self.threshold, band and band.limit) if x is not None]
        if not candidates:
            return None
        tighter = min if self.op in (">", ">=") else max
        learned = band.evidence() if band is not None else {}
        return {"limit": tighter(candidates), "threshold": self.threshold, **learned}

    def recorded_limit(self, limits: Mapping[str, Mapping[str, Any]]) -> float | None:
        """The limit an incident recorded for this condition, else the hard threshold."""
        return limits.get(self.describe(), {}).get("limit", self.threshold)

    def holds(self, value: float, limit: float) -> bool:
        return COMPARE[self.op](value, limit)

    def holding(
        self, read: SeriesReader, now: float, bands: BandReader = unlearned
    ) -> dict[str, Held]:
        """The series this condition holds on now: key → the aggregate and the limit."""
        found = {}
        for key, points in read(self.series, now - self.window).items():
            if not self.selects(key):
                continue
            value = self.evaluate(points, now)
            limit = None if value is None else self.limit(key, bands)
            if limit is not None and self.holds(value, limit["limit"]):
                found[key] = Held(value, {self.describe(): limit})
        return found

    def selects(self, key: str) -> bool:
        """Whether the series ``key`` is one this condition reads: its name, with its labels."""
        name, labels = parse_series_key(key)
        return name == self.series and self.labels.items() <= labels.items()

    def metric_conditions(self) -> tuple[MetricCondition, ...]:
        return (self,)

    def with_learning(self, change: Callable[[Learn], Learn]) -> MetricCondition:
        """The same condition, its learning (if it learns) changed by ``change``."""
        return self if self.learn is None else self.model_copy(update={"learn": change(self.learn)})

    def compressed(self, factor: float) -> MetricCondition:
        """The same condition ``factor`` times faster: its window, and what it learns over."""
        learn = self.learn.compressed(factor) if self.learn else None
        return self.model_copy(update={"window": self.window / factor, "learn": learn})

    def describe(self) -> str:
        series = series_key(self.series, self.labels)
        limits = [self.learn.describe()] if self.learn else []
        if self.threshold is not None:
            limits.append(exact(self.threshold))
        limit = limits[0] if len(limits) == 1 else _tighter(self.op, limits)
        return f"{self.aggregate}({series}, {self.window:g}s) {self.op} {limit}"


def _tighter(op: str, limits: list[str]) -> str:
    return f"{'min' if op in ('>', '>=') else 'max'}({', '.join(limits)})"


def _arrays(points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    times, values = np.asarray(points, dtype=float).reshape(-1, 2).T
    return times, values


class CompositeCondition(Strict):
    """Metric conditions over one or more series: ``all`` of them hold, or ``any`` does.

    ``all`` fires on each series its first condition holds on, when every other condition holds
    on a series whose labels agree with it (a label both carry has one value), so two Redis
    series are judged on the same instance. ``any`` fires on each series a condition holds on.
    """

    kind: Literal["all", "any"]
    of: list[MetricCondition] = Field(min_length=2)

    def holding(
        self, read: SeriesReader, now: float, bands: BandReader = unlearned
    ) -> dict[str, Held]:
        if self.kind == "any":
            found: dict[str, Held] = {}
            for condition in self.of:
                for key, held in condition.holding(read, now, bands).items():
                    found[key] = found[key].joined(held) if key in found else held
            return found
        first, *others = self.of
        found = first.holding(read, now, bands)
        for other in others:
            if not found:
                break
            held = other.holding(read, now, bands)
            found = {key: h.joined(held.get(key)) for key, h in found.items() if _agrees(key, held)}
        return found

    def metric_conditions(self) -> tuple[MetricCondition, ...]:
        return tuple(self.of)

    def with_learning(self, change: Callable[[Learn], Learn]) -> CompositeCondition:
        return self.model_copy(update={"of": [c.with_learning(change) for c in self.of]})

    def compressed(self, factor: float) -> CompositeCondition:
        return self.model_copy(
            update={"of": [condition.compressed(factor) for condition in self.of]}
        )

    def describe(self) -> str:
        joiner = " and " if self.kind == "all" else " or "
        return joiner.join(condition.describe() for condition in self.of)


def _agrees(key: str, others: Mapping[str, Held]) -> bool:
    """Whether some series of ``others`` agrees with ``key``: no label both carry differs."""
    _, labels = parse_series_key(key)
    for other in others:
        _, other_labels = parse_series_key(other)
        if all(labels.get(name, value) == value for name, value in other_labels.items()):
            return True
    return False
