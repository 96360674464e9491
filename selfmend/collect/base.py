"""The Collector protocol: something that, asked now, returns the samples it measures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from selfmend.models import Sample


class Collector(Protocol):
    name: str

    def collect(self) -> list[Sample]:
        """Measure now. Raise on failure; the collect stage isolates one collector's error."""


def samples_at(
    ts: float | None, values: Mapping[str, float | None], labels: Mapping[str, str]
) -> list[Sample]:
    """One sample per named value, sharing a timestamp and labels; ``None`` values are skipped."""
    ts = time.time() if ts is None else ts
    return [
        Sample(series=name, ts=ts, value=float(value), labels=dict(labels))
        for name, value in values.items()
        if value is not None
    ]
