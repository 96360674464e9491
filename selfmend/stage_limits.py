"""Each stage's soft and hard time limit, computed from the settings: the workers give them to
Celery (workers/limits.py), and a stage that bounds its own work (retention's budget) stays
inside its soft limit. No Celery here, so the core can read them.

A stage's default limit shrinks to fit a short visibility timeout; a limit set in
``stage_time_limits`` that does not fit is refused, naming the stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from selfmend.config import Settings
from selfmend.errors import ConfigurationError

# Seconds; remediate's covers pg_create_index's build (index_build_timeout_seconds, 600 s).
SOFT_SECONDS: Mapping[str, float] = {
    "collect": 60,
    "analyze": 300,
    "remediate": 900,
    "verify": 120,
    "check_tasks": 300,
    "notify": 60,
    "schema.watch": 300,
}
OTHER_STAGE_SOFT_SECONDS = 300.0
HARD_AFTER = 1.1  # the hard limit, as a multiple of the soft one
DEFAULT_SHARE = 0.8  # a default hard limit never exceeds this share of the visibility timeout


@dataclass(frozen=True)
class StageLimit:
    soft: float
    hard: float

    @classmethod
    def of(cls, soft: float) -> StageLimit:
        return cls(soft, round(soft * HARD_AFTER, 3))


def stage_limit(settings: Settings, stage: str) -> StageLimit:
    """One stage's limits: ``stage_time_limits`` if set there, else the default, shrunk to fit
    the visibility timeout. ``ConfigurationError`` for a set limit that does not fit."""
    visibility = settings.visibility_timeout_seconds
    if stage not in settings.stage_time_limits:
        default = SOFT_SECONDS.get(stage, OTHER_STAGE_SOFT_SECONDS)
        return StageLimit.of(min(default, visibility * DEFAULT_SHARE / HARD_AFTER))
    limit = StageLimit.of(settings.stage_time_limits[stage])
    if limit.soft <= 0 or limit.hard >= visibility:
        raise ConfigurationError(
            f"SELFMEND_STAGE_TIME_LIMITS: {stage}: a soft limit of {limit.soft:g} s (hard "
            f"{limit.hard:g} s) must be above 0 and, with the hard limit, under "
            f"visibility_timeout_seconds ({visibility:g}): a stage still running then is "
            f"delivered to a second worker; allowed: up to {visibility / HARD_AFTER:.4g} s"
        )
    return limit


def stage_limits(settings: Settings, stages: Iterable[str]) -> dict[str, StageLimit]:
    """Every stage's limits (``stage_limit``); ``ConfigurationError`` also for a stage named in
    ``stage_time_limits`` that is not one of ``stages``."""
    stages = tuple(stages)
    unknown = sorted(set(settings.stage_time_limits) - set(stages))
    if unknown:
        raise ConfigurationError(
            f"SELFMEND_STAGE_TIME_LIMITS: no stage named {unknown[0]!r}; "
            f"stages: {', '.join(stages)}"
        )
    return {stage: stage_limit(settings, stage) for stage in stages}
