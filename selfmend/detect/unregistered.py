"""The integration check as a stage of the loop: task names no worker has registered become
incidents, and each one with a close registered name proposes the ``task_alias`` fix.

A run reads where names are seen (the ERROR lines of the last ``log_window`` seconds in the
store, the beat schedule, the application's source folders), asks the workers what they have
registered, and raises one signal per unregistered name that no alias routes yet. The alias is
high risk, so its incident waits for a person's approval; a name with nothing close enough is
escalated. An incident whose name is no longer seen anywhere, or has since been registered, is
resolved by the next run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from selfmend.detect.correlate import Signal
from selfmend.detect.task_names import (
    MisroutedCall,
    Sighting,
    TaskRegistry,
    check,
    in_log,
    in_schedule,
    in_source,
)
from selfmend.models import IncidentStatus, Severity, series_key
from selfmend.store import Store
from selfmend.store.task_aliases import TaskAliasStore

UNREGISTERED_TASK_PATTERN = "unregistered_task"
ALIAS_ACTION = "task_alias"
_WAITING = (IncidentStatus.OPEN, IncidentStatus.ESCALATED, IncidentStatus.AWAITING_APPROVAL)


@dataclass(frozen=True)
class TaskCheckSources:
    """Where task names are looked for, besides the store's log lines."""

    schedule: Mapping[str, Any] = field(default_factory=dict)
    source_paths: tuple[Path, ...] = ()
    log_window: float = 3600.0


def incident_target(name: str) -> str:
    return series_key(UNREGISTERED_TASK_PATTERN, {"name": name})


def logged(store: Store, since: float, until: float = math.inf) -> Iterator[Sighting]:
    """Unregistered names reported in the store's log lines of ``(since, until]``."""
    for event in store.samples.logs_since(since):
        if event.ts <= until:
            yield from in_log(event.message, f"{event.logger or 'log'}@{event.ts:.0f}")


class TaskNameCheck:
    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        aliases: TaskAliasStore,
        sources: TaskCheckSources,
    ) -> None:
        self.store = store
        self.registry = registry
        self.aliases = aliases
        self.sources = sources

    def findings(self, now: float) -> list[MisroutedCall]:
        """Every unregistered name seen, with the closest registered name."""
        registered = set().union(*self.registry.registered().values())
        sightings = chain(
            logged(self.store, now - self.sources.log_window),
            in_schedule(self.sources.schedule),
            in_source(self.sources.source_paths),
        )
        return check(registered, sightings)

    def signals(self, findings: list[MisroutedCall], now: float) -> list[Signal]:
        """A signal per finding that no alias routes yet; an alias in place is the fix."""
        return [_signal(f, now) for f in findings if self.aliases.get(f.name) is None]

    def resolve_gone(self, findings: list[MisroutedCall]) -> list[int]:
        """Resolve the waiting incidents whose name this run did not find; their ids."""
        found = {incident_target(finding.name) for finding in findings}
        resolved = []
        for incident in self.store.incidents.with_status(_WAITING):
            gone = incident.pattern == UNREGISTERED_TASK_PATTERN and incident.target not in found
            if gone and self.store.incidents.advance(
                incident.id, _WAITING, IncidentStatus.RESOLVED
            ):
                resolved.append(incident.id)
        return resolved


def _signal(finding: MisroutedCall, now: float) -> Signal:
    places = [{"source": s.source, "where": s.where} for s in finding.sightings]
    evidence: dict[str, Any] = {
        "name": finding.name,
        "suggestion": finding.suggestion,
        "similarity": finding.similarity,
        "count": finding.count,
        "sightings": places,
    }
    if finding.alias_params is not None:
        evidence["proposal"] = {"name": ALIAS_ACTION, "params": finding.alias_params}
        described = (
            f"task {finding.name} is registered by no worker; did the caller mean "
            f"{finding.suggestion} (similarity {finding.similarity:.2f})?"
        )
    else:
        described = f"task {finding.name} is registered by no worker, and none is named like it"
    return Signal(
        pattern=UNREGISTERED_TASK_PATTERN,
        target=incident_target(finding.name),
        severity=Severity.HIGH,
        onset=now,
        value=float(finding.count),
        described=described,
        evidence=evidence,
        fixable=finding.alias_params is not None,
    )
