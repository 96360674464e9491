"""A breaker's settings, validated once when it is declared; errors name the field.

The threshold is a count (``failure_threshold`` failures among the last ``window_size`` calls)
or a rate (``failure_rate`` of the last ``window_size`` calls, judged once ``minimum_calls`` are
in the window). The window is count-based: the latest calls, however old. A call slower than
``slow_call_seconds`` counts as a failure even when it returned. ``timeout_seconds`` is how
long the application lets a call wait: the breaker cuts ``async def`` calls there, sync code
passes ``breaker.timeout`` to its own client, and a call over it counts as a failure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfmend.errors import ConfigurationError
from selfmend.resilience.breaker.storage import Window

# What the breaker_thresholds action may change; the rest is the application's choice.
THRESHOLDS = (
    "failure_threshold",
    "failure_rate",
    "slow_call_seconds",
    "timeout_seconds",
    "reset_timeout",
)
DEFAULT_FAILURES = 5


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int | None = Field(
        None, ge=1, description="Failures in the window that open the breaker (count mode)."
    )
    failure_rate: float | None = Field(
        None, gt=0, le=1, description="Share of failed calls in the window that opens it."
    )
    window_size: int = Field(20, ge=1, le=10_000, description="The latest calls counted.")
    minimum_calls: int = Field(
        10, ge=1, description="Rate mode: calls in the window before the rate is judged."
    )
    slow_call_seconds: float | None = Field(
        None, gt=0, description="A call slower than this counts as a failure."
    )
    timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="How long a call may wait: async calls are cut there, sync code reads "
        "breaker.timeout; a call over it counts as a failure.",
    )
    reset_timeout: float = Field(
        30.0, gt=0, description="Seconds open before half-open probes are let through."
    )
    half_open_probes: int = Field(
        1, ge=1, le=100, description="Probes let through half-open; all must succeed to close."
    )
    min_processes: int | None = Field(
        None,
        ge=1,
        description="Distinct processes whose failures are in the window before it opens; "
        "unset: 2 on shared storage (one bad node cannot open it for all), 1 in memory.",
    )
    sync_seconds: float = Field(
        1.0,
        ge=0,
        description="A process renews its view of the shared state when the view is older, "
        "sending the successes it counted since its last trip.",
    )

    @model_validator(mode="before")
    @classmethod
    def _count_by_default(cls, options: Any) -> Any:
        """Neither threshold given: open on 5 failures in the window."""
        if isinstance(options, dict) and not {"failure_threshold", "failure_rate"} & {
            key for key, value in options.items() if value is not None
        }:
            return {**options, "failure_threshold": DEFAULT_FAILURES}
        return options

    @model_validator(mode="after")
    def _one_threshold(self) -> BreakerSettings:
        if self.failure_threshold is not None and self.failure_rate is not None:
            raise ValueError("give failure_threshold or failure_rate, not both")
        if self.failure_threshold is not None and self.failure_threshold > self.window_size:
            raise ValueError(
                f"failure_threshold ({self.failure_threshold}) cannot exceed window_size "
                f"({self.window_size}): the window never holds that many failures"
            )
        if self.failure_rate is not None and self.minimum_calls > self.window_size:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) cannot exceed window_size "
                f"({self.window_size})"
            )
        return self

    def processes_needed(self, shared: bool) -> int:
        if self.min_processes is not None:
            return self.min_processes
        return 2 if shared else 1

    def breach(self, window: Window, processes_needed: int) -> str | None:
        """Why ``window`` opens the breaker, or None while it does not."""
        if window.failing_processes < processes_needed:
            return None
        processes = f"{window.failing_processes} process" + (
            "es" if window.failing_processes > 1 else ""
        )
        if self.failure_threshold is not None and window.failures >= self.failure_threshold:
            return f"{window.failures} failures in the last {window.calls} calls from {processes}"
        if (
            self.failure_rate is not None
            and window.calls >= self.minimum_calls
            and window.failure_rate >= self.failure_rate
        ):
            return (
                f"failure rate {window.failure_rate:.0%} over the last {window.calls} calls "
                f"from {processes}"
            )
        return None


def parse_settings(breaker: str, options: dict[str, Any]) -> BreakerSettings:
    """Validate a breaker's settings; the error names the breaker and the field."""
    try:
        return BreakerSettings.model_validate(options)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigurationError(f"breaker {breaker!r}: {field}: {first['msg']}") from None


def with_overrides(
    breaker: str, base: BreakerSettings, overrides: dict[str, Any]
) -> BreakerSettings:
    """The settings in force: ``base`` with an operator's overrides laid over it. Setting one
    threshold mode through an override clears the other."""
    merged = base.model_dump()
    if "failure_threshold" in overrides:
        merged["failure_rate"] = None
    if "failure_rate" in overrides:
        merged["failure_threshold"] = None
    return parse_settings(breaker, {**merged, **overrides})
