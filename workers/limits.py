"""Time limits per stage, under the broker's visibility timeout, and the task base that ends a
stage cleanly at its soft limit.

On Redis, a message a worker has not acknowledged within the visibility timeout is delivered to
another worker: a stage still running then runs twice at once. So every stage has a soft limit,
at which ``SoftTimeLimitExceeded`` is raised in it, and a hard limit 10% later, at which the
pool kills the process. Both stay under ``visibility_timeout_seconds``, checked when the app is
created. A stage's default limit shrinks to fit a short visibility timeout; a limit set in
``stage_time_limits`` that does not fit is refused, naming the stage.

At the soft limit the stage logs one line and ends; the core's loops that keep one target's
failure from the others let it through (``selfmend.errors.interruptions``), or the stage would
run on to the hard limit. The store writes each step in one transaction, which the exception
rolls back as it passes, and the backlog sends again what was left undone (a claimed remediation
not applied, an overdue verification). Only the prefork pool enforces time limits; the threads
and solo pools ignore them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from selfmend.config import Settings
from selfmend.errors import ConfigurationError, interruptions, is_interruption
from workers.beat import BeatGuardedTask

log = structlog.get_logger(__name__)

# The soft limit interrupts the stage (selfmend.errors.interruptions): the core's per-target
# loops re-raise it rather than log it as one target failing and run on to the hard limit. Here,
# where StageTask is, so every process that runs a stage (the app is created from here) has it.
interruptions.add(SoftTimeLimitExceeded)

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


def stage_limits(settings: Settings, stages: Iterable[str]) -> dict[str, StageLimit]:
    """Each stage's limits: ``stage_time_limits`` where set, else the default, shrunk to fit
    the visibility timeout. ``ConfigurationError`` for a set limit that does not fit."""
    stages = tuple(stages)
    visibility = settings.visibility_timeout_seconds
    unknown = sorted(set(settings.stage_time_limits) - set(stages))
    if unknown:
        raise ConfigurationError(
            f"SELFMEND_STAGE_TIME_LIMITS: no stage named {unknown[0]!r}; "
            f"stages: {', '.join(stages)}"
        )
    limits = {}
    for stage in stages:
        if stage not in settings.stage_time_limits:
            default = SOFT_SECONDS.get(stage, OTHER_STAGE_SOFT_SECONDS)
            limits[stage] = StageLimit.of(min(default, visibility * DEFAULT_SHARE / HARD_AFTER))
            continue
        limit = StageLimit.of(settings.stage_time_limits[stage])
        if limit.soft <= 0 or limit.hard >= visibility:
            raise ConfigurationError(
                f"SELFMEND_STAGE_TIME_LIMITS: {stage}: a soft limit of {limit.soft:g} s (hard "
                f"{limit.hard:g} s) must be above 0 and, with the hard limit, under "
                f"visibility_timeout_seconds ({visibility:g}): a stage still running then is "
                f"delivered to a second worker; allowed: up to {visibility / HARD_AFTER:.4g} s"
            )
        limits[stage] = limit
    return limits


def annotations(limits: Mapping[str, StageLimit]) -> dict[str, dict[str, Any]]:
    """Celery's ``task_annotations`` that give each stage's task its limits."""
    return {
        f"selfmend.{stage}": {"soft_time_limit": limit.soft, "time_limit": limit.hard}
        for stage, limit in limits.items()
    }


class StageTask(BeatGuardedTask):
    """A stage task that, at its soft time limit, logs one line and ends: no traceback, no
    result, no next link of its chain (the backlog sends again what it left undone)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as error:
            if not is_interruption(error):
                raise
            log.warning(
                "stage.soft_time_limit",
                task=self.name,
                soft_time_limit=self.soft_time_limit,
                task_id=self.request.id,
            )
            raise Ignore() from None
