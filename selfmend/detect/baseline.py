"""Learned limits: a series judged against its own usual band rather than a number assumed for
every application.

``learn = { ... }`` on a metric condition makes it compare the current window's aggregate with
the same aggregate over the series' own past windows. The band is the median of those past
aggregates and their tail quantiles; the limit is past the usual edge *and* a meaningful step
from the median, so a series that is always a little off (a hit ratio of 0.75) is its own normal,
and one that has nothing to learn from yet (a new series) does not alarm until it has shown its
usual behaviour. A ``threshold`` on the same condition stays a hard limit a person sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.detect.aggregates import exact

HOUR = 3600.0

BandReader = Callable[[str, str], "Band | None"]
"""The band of a condition (by its description) on a series key, or None: not learned (yet)."""

Stretch = tuple[float, float]
"""``(start, end)``: seconds during which a series was not itself (an incident was open on it)."""


def unlearned(condition: str, key: str) -> Band | None:
    """No band for any series: a learned condition fires on its hard threshold only."""
    return None


def _seconds(gt: float = 0.0, **extra: Any) -> Any:
    return Field(gt=gt, strict=True, allow_inf_nan=False, **extra)


class Learn(BaseModel):
    """How a condition learns its series' usual band. The defaults hold for series in general;
    a pattern changes one where its series is particular (``floor`` above all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    history: float = _seconds(
        default=6 * HOUR,
        description="Seconds of the series' past the band is learned from: hundreds of windows, "
        "and the busy and quiet hours of a working day, while a lasting change (a release) "
        "becomes the new normal within the day. Raw samples are kept 24 h, so it can be read.",
    )
    warm_up: float = _seconds(
        default=0.5 * HOUR,
        description="Seconds of past windows a series needs before its band may alarm: the "
        "conservative start. A new series (a deploy, a new label value) shows its usual "
        "behaviour over dozens of windows first; until then only a hard threshold fires.",
    )
    quantile: float = Field(
        0.99,
        gt=0.5,
        lt=1.0,
        strict=True,
        description="The usual edge: the tail quantile of the past window aggregates (its "
        "complement for a lower edge). About one window in a hundred lies past it on an "
        "ordinary day, so crossing it alone is not yet a fault.",
    )
    change: float = Field(
        0.25,
        ge=0.0,
        strict=True,
        allow_inf_nan=False,
        description="The smallest step from the median that counts, relative to it: a quarter "
        "of a series' usual level. A steady series has a narrow tail, and without this a "
        "wobble just past it would fire.",
    )
    floor: float = Field(
        0.0,
        ge=0.0,
        strict=True,
        allow_inf_nan=False,
        description="The smallest step from the median that counts, in the series' own units. "
        "No default fits every unit; set it where the median is about 0 (error ratios, "
        "rates), where a relative step is no step and a single error would fire.",
    )
    relearn: float = _seconds(
        default=300.0,
        description="Seconds a learned band is used before it is learned again: a band over "
        "hours moves little in minutes, and reading hours of samples on every pass would "
        "cost more than the pass.",
    )

    @model_validator(mode="after")
    def _warm_up_within_history(self) -> Self:
        if self.warm_up > self.history:
            raise ValueError(
                f"warm_up ({self.warm_up:g} s) is longer than history ({self.history:g} s): "
                "a series could never have learned enough"
            )
        return self

    def warming_up_for(self, seconds: float) -> Learn:
        """This learning with ``seconds`` of warm-up, unless the pattern chose its own (the
        deployment's ``SELFMEND_LEARN_WARM_UP_SECONDS``); never past its history."""
        if "warm_up" in self.model_fields_set:
            return self
        return self.model_copy(update={"warm_up": min(seconds, self.history)})

    def compressed(self, factor: float) -> Learn:
        """Time running ``factor`` times faster: history, warm-up and relearning shrink too."""
        return self.model_copy(
            update={
                "history": self.history / factor,
                "warm_up": self.warm_up / factor,
                "relearn": self.relearn / factor,
            }
        )

    def band(
        self, op: str, aggregates: Sequence[float], window: float, left_out: float = 0.0
    ) -> Band | None:
        """The band of the past window aggregates, with the limit for ``op``; None while the
        windows cover less than the warm-up. ``left_out`` is the seconds of history set aside
        (incidents): they count towards neither the band nor the warm-up."""
        span = len(aggregates) * window
        if not aggregates or span < self.warm_up:
            return None
        values = np.asarray(aggregates, dtype=float)
        median = float(np.median(values))
        low, high = (float(q) for q in np.quantile(values, [1 - self.quantile, self.quantile]))
        step = max(abs(median) * self.change, self.floor)
        limit = max(high, median + step) if op in (">", ">=") else min(low, median - step)
        return Band(limit, median, low, high, span, left_out)

    def describe(self) -> str:
        """``learned``, with the fields this condition sets apart from the defaults."""
        changed = [
            f"{name}={exact(float(value))}"
            for name, value in self.model_dump().items()
            if value != type(self).model_fields[name].default
        ]
        return f"learned({', '.join(changed)})" if changed else "learned"


@dataclass(frozen=True)
class Band:
    """What a series usually does over a condition's window, and the limit that follows."""

    limit: float
    median: float
    low: float
    high: float
    history_seconds: float  # the windows learned from
    left_out_seconds: float = 0.0  # the windows set aside: an incident was open on the series

    def evidence(self) -> dict[str, Any]:
        return {
            "learned_limit": self.limit,
            "median": self.median,
            "band": [self.low, self.high],
            "history_seconds": self.history_seconds,
            "left_out_seconds": self.left_out_seconds,
        }

    @classmethod
    def from_evidence(cls, evidence: Mapping[str, Any]) -> Band:
        low, high = evidence["band"]
        return cls(
            evidence["learned_limit"],
            evidence["median"],
            low,
            high,
            evidence["history_seconds"],
            evidence.get("left_out_seconds", 0.0),  # recorded before anything was set aside
        )


def window_aggregates(
    times: np.ndarray,
    values: np.ndarray,
    window: float,
    until: float,
    history: float,
    aggregate: Callable[[np.ndarray, np.ndarray], float | None],
    left_out: Sequence[Stretch] = (),
) -> tuple[list[float], float]:
    """The aggregate of each whole window ``(end - window, end]`` stepping back from ``until``
    over ``history``, oldest first, leaving out windows ``aggregate`` finds too sparse (None)
    and those that overlap a stretch of ``left_out``; with the seconds of windows those
    stretches took."""
    found = []
    ends = until - window * np.arange(int(history // window))[::-1]
    during = np.zeros(ends.shape, dtype=bool)
    for start, stop in left_out:
        during |= (ends > start) & (ends - window < stop)
    for end in ends[~during]:
        first, last = np.searchsorted(times, [end - window, end], side="right")
        if last - first >= 2:
            value = aggregate(times[first:last], values[first:last])
            if value is not None:
                found.append(value)
    return found, float(during.sum()) * window


def recorded(evidence: Mapping[str, Any], target: str, current: BandReader) -> BandReader:
    """The bands an incident recorded when it opened, for its own series; ``current`` for every
    other. An open incident clears against the limit it was opened on, so a fault that lasts
    does not clear its own incident by teaching the band."""
    limits = evidence.get("limits", {})

    def band(condition: str, key: str) -> Band | None:
        judged = limits.get(condition) if key == target else None
        if judged is None or "learned_limit" not in judged:
            return current(condition, key)
        return Band.from_evidence(judged)

    return band
