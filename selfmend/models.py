"""The wire types that flow one way through the loop.

``Sample`` → ``Anomaly`` → ``Incident`` → ``Execution`` → ``Verification``. Pushed input is
validated here, once, with errors that name the offending field; a bad item never sinks its batch.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SERIES_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:]*$")


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def needs_approval(self) -> bool:
        return self in (Risk.HIGH, Risk.CRITICAL)


class IncidentStatus(StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    ROLLING_BACK = "rolling_back"  # its fix failed verification and is not yet rolled back
    RESOLVED = "resolved"
    ROLLED_BACK = "rolled_back"
    ESCALATED = "escalated"

    @property
    def closed(self) -> bool:
        """Closed incidents release (pattern, target): the next match opens a new incident.

        An escalated incident stays open until its condition clears, so a person is told once.
        """
        return self in (IncidentStatus.RESOLVED, IncidentStatus.ROLLED_BACK)


class ExecutionState(StrEnum):
    """One row per state change in the executions log."""

    PLANNED = "planned"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    APPLYING = "applying"
    RESUMED = "resumed"  # the claim was taken up again: its first delivery's worker was lost
    APPLIED = "applied"
    FAILED = "failed"
    VERIFIED = "verified"
    ROLLBACK_OWED = "rollback_owed"  # the verdict not fixed: owed until a rolled_back row
    ROLLED_BACK = "rolled_back"
    IGNORED = "ignored"  # a verify of a fix no longer current: judged already, or superseded
    CLOSED = "closed"  # a person resolved the incident by hand
    UNCREDITED = "uncredited"  # the fix changed nothing: no verdict for it, nothing to undo


class Verdict(StrEnum):
    FIXED = "fixed"
    NOT_FIXED = "not_fixed"
    UNCREDITED = "uncredited"  # back in band, but not the fix's doing (``selfmend.credit``)


def series_key(name: str, labels: Mapping[str, str]) -> str:
    """Canonical identity of a series, in Prometheus' notation: ``name{a="1",b="2"}``."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


_LABEL = re.compile(r'([^=,]+)="([^"]*)"')


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """The name and labels of a key made by ``series_key`` (a value holding ``"`` is cut short)."""
    name, _, inner = key.partition("{")
    return name, dict(_LABEL.findall(inner))


class Sample(BaseModel):
    """One measurement of one series. ``ts`` is seconds since the epoch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    series: str = Field(min_length=1, max_length=200)
    ts: float = Field(strict=True, allow_inf_nan=False, gt=0)
    value: float = Field(strict=True, allow_inf_nan=False)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("series")
    @classmethod
    def _series_is_a_name(cls, name: str) -> str:
        if not SERIES_NAME.match(name):
            raise ValueError("must start with a letter or _ and hold only letters, digits, _ . :")
        return name

    @property
    def key(self) -> str:
        return series_key(self.series, self.labels)


class LogEvent(BaseModel):
    """A log line the application forwarded (error-log patterns match on these)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: float = Field(strict=True, allow_inf_nan=False, gt=0)
    level: str = Field(min_length=1, max_length=20)
    message: str = Field(max_length=4000)
    logger: str = Field("", max_length=200)


class SettingsRead(BaseModel):
    """The live settings an application's code asked for, reported by its client at ``ts``:
    a setting nobody reads is no fix to change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: float = Field(strict=True, allow_inf_nan=False, gt=0)
    keys: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=1000)


@dataclass(frozen=True)
class Rejection:
    """Why one item of a batch was refused; ``field`` names what to fix."""

    index: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"item {self.index}: {self.field}: {self.message}"


@dataclass
class ParsedBatch:
    samples: list[Sample]
    logs: list[LogEvent]
    rejected: list[Rejection]
    settings_read: list[SettingsRead]


def parse_batch(items: Iterable[Any], *, max_skew: float, now: float | None = None) -> ParsedBatch:
    """Validate pushed items one by one: keep the good ones, name the field of each bad one.

    An item is a JSON object with ``kind`` "sample" (the default), "log" or "settings_read".
    """
    now = time.time() if now is None else now
    batch = ParsedBatch([], [], [], [])
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            batch.rejected.append(Rejection(index, "item", "must be a JSON object"))
            continue
        fields = dict(item)
        kind = fields.pop("kind", "sample")
        if kind not in _KINDS:
            batch.rejected.append(Rejection(index, "kind", f"must be one of {sorted(_KINDS)}"))
            continue
        model, into = _KINDS[kind]
        try:
            parsed = model.model_validate(fields)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "item"
            batch.rejected.append(Rejection(index, field, first["msg"]))
            continue
        if parsed.ts > now + max_skew:
            batch.rejected.append(
                Rejection(
                    index,
                    "ts",
                    f"is {parsed.ts - now:.0f} s in the future "
                    f"(more than the allowed {max_skew:.0f} s clock skew)",
                )
            )
            continue
        getattr(batch, into).append(parsed)
    return batch


# Each kind of item: its model, and the list of ``ParsedBatch`` it goes to.
_KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "sample": (Sample, "samples"),
    "log": (LogEvent, "logs"),
    "settings_read": (SettingsRead, "settings_read"),
}


class Anomaly(BaseModel):
    series: str
    ts: float
    value: float
    score: float
    detector: str
