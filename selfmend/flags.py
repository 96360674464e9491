"""Feature flags: live settings under ``flag.<name>`` that say whether a feature is on.

A flag is on (``true``), off (``false``) or on for a share of units, users or tenants say
(``{"percent": 20}``). A unit's place is a hash of the flag's name and the unit, so the same
user stays in or out, and raising the share from 10 to 20 % adds users without moving the
first ones. selfmend's ``feature_flag`` action dials a flag's share (off, when the feature is
what went wrong); the application asks ``client.flag(name, unit=user_id)``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from selfmend.errors import InvalidInput

FLAG_PREFIX = "flag."


def control_key(name: str) -> str:
    return FLAG_PREFIX + name


def share(name: str, value: Any) -> float:
    """The percentage of units a flag's stored value turns the feature on for."""
    if isinstance(value, bool):
        return 100.0 if value else 0.0
    percent = value.get("percent") if isinstance(value, dict) and len(value) == 1 else None
    if isinstance(percent, int | float) and not isinstance(percent, bool) and 0 <= percent <= 100:
        return float(percent)
    raise InvalidInput(
        f"flag {name}: {value!r} is not true, false or {{'percent': 0..100}} (live setting "
        f"{control_key(name)})"
    )


def stored(percent: float) -> bool | dict[str, float]:
    """What a share is stored as: all or nothing as a boolean, anything else as a percent."""
    if percent in (0, 100):
        return percent == 100
    return {"percent": percent}


def is_on(name: str, value: Any, unit: str | int | None) -> bool:
    """Whether the feature is on for ``unit``; a partial share is off for no unit at all."""
    percent = share(name, value)
    if percent in (0.0, 100.0) or unit is None:
        return percent == 100.0
    digest = hashlib.sha256(f"{name}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100 < percent
