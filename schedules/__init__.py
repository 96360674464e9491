"""The beat schedule, built from Settings.

Every entry expires after two of its intervals, so a backlog after an outage runs the current
tick, not a queue of stale ones.
"""

from __future__ import annotations

from typing import Any

from selfmend.config import Settings


def build_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    intervals = {
        "selfmend.collect": settings.collect_interval,
        "selfmend.analyze": settings.analyze_interval,
        "selfmend.check_tasks": settings.task_check_interval,
        "selfmend.notify": settings.notify_interval,
        "selfmend.schema.watch": settings.schema_watch_interval,
        "selfmend.retention": settings.retention_interval,
    }
    return {
        name: {"task": name, "schedule": interval, "options": {"expires": 2 * interval}}
        for name, interval in intervals.items()
    }
