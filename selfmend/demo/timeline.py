"""What the demo reports: per injected fault, when it was detected, fixed and verified."""

from __future__ import annotations

from dataclasses import dataclass

from selfmend.detect.patterns import Pattern
from selfmend.models import ExecutionState
from selfmend.store import Store


@dataclass(frozen=True)
class FaultRow:
    fault: str
    injected_at: float
    detected_at: float | None
    fixed_at: float | None
    closed_at: float | None
    outcome: str
    changed: str

    @property
    def done(self) -> bool:
        return self.closed_at is not None


def compressed(patterns: tuple[Pattern, ...], factor: float) -> tuple[Pattern, ...]:
    """The same patterns with windows (and what they learn over) ``factor`` times shorter:
    demo time runs faster."""
    return tuple(pattern.compressed(factor) for pattern in patterns)


def fault_rows(
    store: Store,
    injected: dict[str, float],
    fault_patterns: dict[str, str],
) -> list[FaultRow]:
    incidents = store.incidents.list(limit=1000)
    rows = []
    for fault, at in injected.items():
        mine = [i for i in incidents if i.pattern == fault_patterns[fault] and i.opened_at >= at]
        if not mine:
            rows.append(FaultRow(fault, at, None, None, None, "not detected", "-"))
            continue
        incident = min(mine, key=lambda i: i.opened_at)
        steps = store.executions.history(incident.id)
        applied = [e for e in steps if e.state is ExecutionState.APPLIED]
        rows.append(
            FaultRow(
                fault,
                at,
                incident.opened_at,
                applied[0].created_at if applied else None,
                incident.closed_at,
                str(incident.status),
                applied[0].target if applied else "-",
            )
        )
    return rows


def false_incidents(store: Store, before: float) -> int:
    """Incidents opened in the fault-free stretch (before the first fault)."""
    return sum(1 for incident in store.incidents.list(limit=1000) if incident.opened_at < before)
