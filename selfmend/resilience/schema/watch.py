"""The schema watch, one run: fingerprint each watched database, and when the schema differs
from its last stored version, store the new version with its changes, tell this process's
listeners and every other process (the live setting ``schema.version.<database>``), and open an
incident for a critical change.

A critical change (a table or column dropped or renamed) has no safe automatic fix: its
incident, ``schema_critical_change``, has no action, so the remediate stage escalates it to a
person. It is not a catalogue pattern, whose incidents the analyze stage resolves once their
condition stops holding: a dropped column stays dropped, so the incident waits for a person.
Each critical version opens its own incident, which a later watch never opens again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from selfmend.errors import is_interruption
from selfmend.models import IncidentStatus, Severity, series_key
from selfmend.resilience.schema.databases import WatchedDatabase
from selfmend.resilience.schema.diff import SchemaChange, diff, highest
from selfmend.resilience.schema.events import SchemaEvents, SchemaVersionEvent, schema_events
from selfmend.resilience.schema.fingerprint import Fingerprint, fingerprint
from selfmend.store import Store
from selfmend.store.schema_versions import SchemaVersion

log = structlog.get_logger(__name__)

SCHEMA_CRITICAL_PATTERN = "schema_critical_change"
VERSION_CONTROL_PREFIX = "schema.version."
ACTOR = "selfmend.schema"
DESCRIBED_CHANGES = 5


def version_control(database: str) -> str:
    """The live setting holding ``database``'s current schema version id."""
    return VERSION_CONTROL_PREFIX + database


def incident_target(database: str, number: int) -> str:
    return series_key("schema", {"database": database, "version": str(number)})


@dataclass
class WatchReport:
    """Per database: the version it is at, and what the run recorded (``changes`` is empty
    when the schema had not changed); ``errors`` names the databases that could not be read."""

    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    new_incidents: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "databases": self.databases,
            "errors": self.errors,
            "new_incidents": self.new_incidents,
        }


class SchemaWatch:
    def __init__(
        self,
        store: Store,
        databases: Sequence[WatchedDatabase],
        events: SchemaEvents = schema_events,
    ) -> None:
        self.store = store
        self.databases = databases
        self.events = events

    def run(self) -> WatchReport:
        """Watch every database; one that cannot be read is reported and the rest still run."""
        report = WatchReport()
        for database in self.databases:
            try:
                self._watch(database, report)
            except Exception as error:
                if is_interruption(error):
                    raise
                log.exception("schema.watch_failed", database=database.name)
                report.errors[database.name] = f"{type(error).__name__}: {error}"
        return report

    def _watch(self, database: WatchedDatabase, report: WatchReport) -> None:
        with database.connect() as connection:
            current = fingerprint(connection)
        latest = self.store.schema_versions.latest(database.name)
        if latest is not None and latest.digest == current.digest:
            self._publish(database.name, latest)
            report.databases[database.name] = _summary(latest, [], recorded=False)
            return
        before = None if latest is None else Fingerprint.from_canonical(latest.fingerprint)
        changes = [] if before is None else diff(before, current)
        number = 1 if latest is None else latest.number + 1
        incident_id = None
        if highest(changes) is Severity.CRITICAL:
            incident_id = self._open_incident(database.name, number, changes, report)
        version = self.store.schema_versions.record(
            database=database.name,
            number=number,
            digest=current.digest,
            fingerprint=current.canonical(),
            changes=[change.as_dict() for change in changes],
        )
        if version is None:  # another watcher recorded this version first, and told everyone
            latest = self.store.schema_versions.latest(database.name)
            report.databases[database.name] = _summary(latest, [], recorded=False)
            return
        self._announce(version, latest, changes)
        report.databases[database.name] = _summary(version, changes, True, incident_id)

    def _announce(
        self, version: SchemaVersion, previous: SchemaVersion | None, changes: list[SchemaChange]
    ) -> None:
        """Tell other processes (the live setting), then this process's listeners."""
        log.info(
            "schema.version",
            database=version.database,
            number=version.number,
            changes=len(changes),
            severity=highest(changes),
        )
        self._publish(version.database, version)
        self.events.fire(
            SchemaVersionEvent(
                database=version.database,
                version_id=version.id,
                number=version.number,
                digest=version.digest,
                previous_id=None if previous is None else previous.id,
                changes=tuple(changes),
            )
        )

    def _publish(self, database: str, version: SchemaVersion) -> None:
        """Set the live setting to ``version``, also when a run that recorded it died before
        publishing it."""
        key = version_control(database)
        if self.store.controls.get(key) != version.id:
            self.store.controls.set(key, version.id, ACTOR)

    def _open_incident(
        self, database: str, number: int, changes: list[SchemaChange], report: WatchReport
    ) -> int:
        """The version's incident; listed for remediation (where it is escalated) while it is
        still open, also when a run that opened it died before it was remediated."""
        critical = [c for c in changes if c.severity is Severity.CRITICAL]
        described = "; ".join(c.describe() for c in critical[:DESCRIBED_CHANGES])
        more = len(critical) - DESCRIBED_CHANGES
        incident, created = self.store.incidents.open(
            pattern=SCHEMA_CRITICAL_PATTERN,
            target=incident_target(database, number),
            severity=Severity.CRITICAL,
            series_key=None,
            root_cause=f"schema of {database} changed (version {number}): {described}"
            + (f"; and {more} more" if more > 0 else ""),
            evidence={
                "database": database,
                "version": number,
                "changes": [change.as_dict() for change in changes],
            },
        )
        if created or incident.status is IncidentStatus.OPEN:
            report.new_incidents.append(incident.id)
        if created:
            log.warning("incident.opened", incident_id=incident.id, pattern=incident.pattern)
        return incident.id


def _summary(
    version: SchemaVersion,
    changes: list[SchemaChange],
    recorded: bool,
    incident_id: int | None = None,
) -> dict[str, Any]:
    severity = highest(changes)
    return {
        "version_id": version.id,
        "number": version.number,
        "digest": version.digest,
        "recorded": recorded,
        "severity": None if severity is None else str(severity),
        "changes": [change.as_dict() for change in changes],
        "incident": incident_id,
    }
