"""Pattern rules: deterministic conditions over recent samples or log lines, each with its fix.

A metric condition aggregates one series over a window (``max(cache.hit_ratio, 30 s) < 0.8``
reads "below 0.8 for the last 30 s") and needs samples spanning half the window, so one stray
point cannot fire it. A composite condition joins metric conditions over one or more series
(``all`` must hold, or ``any``). The same metric conditions judge the fix: ``holds`` on fresh
samples, against the limit the incident recorded. A condition's limit is a hard ``threshold``
a person sets, or learned from the series' own past (``baseline``), or the tighter of both.
The built-in patterns are in ``catalogue.toml``, read by ``pattern_file``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Re-exported: a pattern's whole vocabulary is read from this module.
from selfmend.detect.aggregates import Aggregate as Aggregate
from selfmend.detect.aggregates import Comparison as Comparison
from selfmend.detect.baseline import BandReader, Learn, unlearned
from selfmend.detect.conditions import CompositeCondition as CompositeCondition
from selfmend.detect.conditions import Held as Held
from selfmend.detect.conditions import MetricCondition, SeriesReader, Strict
from selfmend.models import Risk, Severity


class LogCondition(Strict):
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

    def with_learning(self, change: Callable[[Learn], Learn]) -> LogCondition:
        return self  # a log line is matched, not judged against a band

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


class ActionSpec(Strict):
    """Which allow-listed action fixes a pattern, with its parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    risk: Risk | None = Field(None, description="Raise the action's own risk; never lowers it.")

    def describe(self) -> str:
        params = [f"{key}={json.dumps(value)}" for key, value in self.params.items()]
        risk = [f"(risk {self.risk})"] if self.risk else []
        return " ".join([self.name, *params, *risk])


class Pattern(Strict):
    """A condition, and the fixes that may clear it: ``action`` for one, ``actions`` for several
    candidates, which the remediate stage ranks by how often each fixed this pattern before and
    tries in turn while verification fails. No fix: the incident goes to a person."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    condition: Condition
    severity: Severity
    actions: tuple[ActionSpec, ...] = ()
    unless: MetricCondition | None = Field(
        None,
        description="The pattern does not fire while this holds on any series: another "
        "pattern judges the same trouble on a better series.",
    )
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

    @property
    def window(self) -> float:
        """Seconds of samples (or log lines) the condition reads: its longest window."""
        if isinstance(self.condition, LogCondition):
            return self.condition.window
        return max(c.window for c in self.condition.metric_conditions())

    def reads(self) -> tuple[MetricCondition, ...]:
        """Every metric condition the pattern reads: its condition's, and ``unless``."""
        unless = (self.unless,) if self.unless is not None else ()
        return (*self.condition.metric_conditions(), *unless)

    def silenced(self, read: SeriesReader, now: float, bands: BandReader = unlearned) -> bool:
        return self.unless is not None and bool(self.unless.holding(read, now, bands))

    def with_learning(self, change: Callable[[Learn], Learn]) -> Pattern:
        """The same pattern, the learning of each condition it reads changed by ``change``."""
        unless = self.unless.with_learning(change) if self.unless is not None else None
        return self.model_copy(
            update={"condition": self.condition.with_learning(change), "unless": unless}
        )

    def compressed(self, factor: float) -> Pattern:
        """The same pattern with time running ``factor`` times faster (the demo, the tests)."""
        unless = self.unless.compressed(factor) if self.unless is not None else None
        return self.model_copy(
            update={"condition": self.condition.compressed(factor), "unless": unless}
        )

    def recorded_limit(self, evidence: Mapping[str, Any]) -> float | None:
        """The limit an incident of this pattern recorded for its own series (its condition's
        first metric condition), else that condition's hard threshold; None for a log pattern."""
        conditions = self.condition.metric_conditions()
        return conditions[0].recorded_limit(evidence.get("limits", {})) if conditions else None

    def describe_fix(self) -> str:
        return " or ".join(action.describe() for action in self.actions) or "escalate"


@dataclass(frozen=True)
class Match:
    """A pattern that fired: on which target, with the value and evidence that made it fire."""

    pattern: Pattern
    target: str
    value: float
    evidence: dict[str, Any]
