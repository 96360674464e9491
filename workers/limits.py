"""Time limits per stage, under the broker's visibility timeout, and the task base that ends a
stage cleanly at its soft limit.

On Redis, a message a worker has not acknowledged within the visibility timeout is delivered to
another worker: a stage still running then runs twice at once. So every stage has a soft limit,
at which ``SoftTimeLimitExceeded`` is raised in it, and a hard limit 10% later, at which the
pool kills the process. Both stay under ``visibility_timeout_seconds``, checked when the app is
created. The limits themselves are computed in selfmend/stage_limits.py, free of Celery, so the
core can stay inside them too.

At the soft limit the stage logs one line and ends; the core's loops that keep one target's
failure from the others let it through (``selfmend.errors.interruptions``), or the stage would
run on to the hard limit. The store writes each step in one transaction, which the exception
rolls back as it passes, and the backlog sends again what was left undone (a claimed remediation
not applied, an overdue verification). Only the prefork pool enforces time limits; the threads
and solo pools ignore them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from selfmend.errors import interruptions, is_interruption
from selfmend.stage_limits import StageLimit, stage_limits
from workers.beat import BeatGuardedTask

log = structlog.get_logger(__name__)

# The soft limit interrupts the stage (selfmend.errors.interruptions): the core's per-target
# loops re-raise it rather than log it as one target failing and run on to the hard limit. Here,
# where StageTask is, so every process that runs a stage (the app is created from here) has it.
interruptions.add(SoftTimeLimitExceeded)

__all__ = ["StageLimit", "StageTask", "annotations", "stage_limits"]


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
