"""The analyze stage: new points through the detectors (``streaming``), recent windows through
the patterns.

A series that some pattern names is judged by that pattern (its anomalies are stored, not made
incidents); the detector raises signals for every other series. Signals on related series
become one incident (``correlate``). Incidents whose condition has cleared are resolved here;
which waiting incidents are due for remediation again is the backlog's to say (``remedy``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from selfmend.detect.baseline import BandReader, recorded
from selfmend.detect.choice import DetectorChoice
from selfmend.detect.correlate import Signal, priority, rank, related
from selfmend.detect.history import Baselines
from selfmend.detect.multivariate import ServiceForest, ServiceVerdict
from selfmend.detect.patterns import LogCondition, Match, Pattern, SeriesReader
from selfmend.detect.streaming import ANOMALY_PATTERN, StreamingPass, Tally, collector_paused
from selfmend.models import (
    IncidentStatus,
    LogEvent,
    Severity,
    parse_series_key,
    series_key,
)
from selfmend.store import Store
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

SERVICE_PATTERN = "service_anomaly"
SERVICE_HISTORY_BUCKETS = 240
LOG_TARGET = "logs"
_ACTIVE = (
    IncidentStatus.OPEN,
    IncidentStatus.AWAITING_APPROVAL,
    IncidentStatus.REMEDIATING,
    IncidentStatus.VERIFYING,
    IncidentStatus.ROLLING_BACK,
    IncidentStatus.ESCALATED,
)


@dataclass(frozen=True)
class AnalyzeSettings:
    detectors: tuple[DetectorChoice, ...] = ()
    clear_points: int = 3
    group_seconds: float = 300.0
    root_cause_tolerance: float = 60.0
    flap_seconds: float = 3600.0
    services: tuple[str, ...] = ()  # judged together by the forest; "*" for all
    forest: ServiceForest = field(default_factory=ServiceForest)


@dataclass
class AnalyzeReport(Tally):
    new_incidents: list[int] = field(default_factory=list)
    grouped: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Recent:
    """The recent samples of the series patterns name, the recent log lines, and the bands
    learned conditions judge by."""

    windows: SeriesReader
    logs: list[LogEvent]
    bands: BandReader


class Analyzer:
    def __init__(
        self, store: Store, patterns: tuple[Pattern, ...], settings: AnalyzeSettings
    ) -> None:
        self.store = store
        self.patterns = {pattern.name: pattern for pattern in patterns}
        self.settings = settings
        metrics = [metric for p in patterns for metric in p.reads()]
        self._pattern_series = {metric.series for metric in metrics}
        self._metric_window = max((metric.window for metric in metrics), default=0.0)
        logs = [p.condition for p in patterns if isinstance(p.condition, LogCondition)]
        self._log_window = max((condition.window for condition in logs), default=0.0)
        self._baselines = Baselines(store, metrics)
        self._streaming = StreamingPass(
            store, settings.detectors, settings.clear_points, self._pattern_series
        )

    def run(self, now: float | None = None, shard: int = 0, shards: int = 1) -> AnalyzeReport:
        now = time.time() if now is None else now
        report = AnalyzeReport()
        signals: list[Signal] = []
        if shard == 0:  # patterns and incident upkeep read across series: one shard does them
            recent = self._recent(now)
            self._upkeep(report, now, recent)
            signals += [self._signal(match, now) for match in self.matches(now, recent)]
        with collector_paused():
            try:
                self._streaming.run(report, shard, shards, signals)
            except Exception:
                self._raise(report, signals, now)  # the series saved before it failed
                raise
        if shard == 0 and self.settings.services:
            signals += self._judge_services(now)
        self._raise(report, signals, now)
        return report

    def raise_signals(self, signals: list[Signal], now: float) -> AnalyzeReport:
        """Incidents for signals found outside a pass (the integration check's), opened,
        grouped and ranked as a pass's own are."""
        report = AnalyzeReport()
        self._raise(report, signals, now)
        return report

    def matches(self, now: float, recent: _Recent | None = None) -> list[Match]:
        recent = recent or self._recent(now)
        found: list[Match] = []
        for pattern in self.patterns.values():
            found += self._match(pattern, now, recent)
        return found

    def _recent(self, now: float) -> _Recent:
        """What the patterns read, in two queries for the whole pass rather than one each."""
        windows = self.store.samples.windows_by_name(
            self._pattern_series, now - self._metric_window
        )
        logs = self.store.samples.logs_since(now - self._log_window) if self._log_window else []
        return _Recent(windows, logs, self._baselines.at(now))

    def _match(
        self, pattern: Pattern, now: float, recent: _Recent, bands: BandReader | None = None
    ) -> list[Match]:
        """The pattern's matches now, judged by ``bands`` (the current ones by default)."""
        condition = pattern.condition
        if isinstance(condition, LogCondition):
            lines = _matching_logs(condition, recent.logs, now)
            if not lines:
                return []
            return [Match(pattern, LOG_TARGET, float(len(lines)), {"lines": lines[:5]})]
        if pattern.silenced(recent.windows, now, recent.bands):
            return []
        held = condition.holding(recent.windows, now, bands or recent.bands)
        return [Match(pattern, key, h.value, h.evidence()) for key, h in held.items()]

    def _signal(self, match: Match, now: float) -> Signal:
        pattern = match.pattern
        condition = pattern.condition
        return Signal(
            pattern=pattern.name,
            target=match.target,
            severity=pattern.severity,
            onset=now - pattern.window,
            value=match.value,
            described=condition.describe(),
            evidence=match.evidence,
            fixable=bool(pattern.actions),
        )

    def _raise(self, report: AnalyzeReport, signals: list[Signal], now: float) -> None:
        """Open an incident per group of related signals, root cause first.

        A signal with an automatic fix always has its own incident: its fix is specific to its
        pattern and target and must not wait on another's. Any other signal (a detector's alarm,
        a pattern that only escalates) joins a related incident opened within ``group_seconds``.
        """
        tolerance = self.settings.root_cause_tolerance
        recent = [
            incident
            for incident in self.store.incidents.with_status(_ACTIVE)
            if incident.opened_at >= now - self.settings.group_seconds
        ]
        for signal in sorted(signals, key=lambda s: priority(s.onset, s.target, tolerance)):
            host = None if signal.fixable else _host(recent, signal)
            if host is not None:
                if self._join(host, signal):
                    recent[recent.index(host)] = self.store.incidents.get(host.id)
                    report.grouped.append(host.id)
                continue
            incident, created = self.store.incidents.open(
                pattern=signal.pattern,
                target=signal.target,
                severity=signal.severity,
                series_key=None if signal.target == LOG_TARGET else signal.target,
                root_cause=_root_cause(signal.member()),
                evidence=signal.evidence | {"members": [signal.member()]},
                reopens_since=now - self.settings.flap_seconds,
            )
            if created:
                recent.append(incident)
                report.new_incidents.append(incident.id)
                log.info(
                    "incident.opened",
                    incident_id=incident.id,
                    pattern=signal.pattern,
                    target=signal.target,
                )

    def _join(self, incident: Incident, signal: Signal) -> bool:
        """Add the signal to the incident's members and re-rank them; False if already there."""
        members = _members(incident)
        if any((m["pattern"], m["target"]) == (signal.pattern, signal.target) for m in members):
            return False
        ranked = rank([*members, signal.member()], self.settings.root_cause_tolerance)
        self.store.incidents.regroup(incident.id, ranked, _root_cause(ranked[0]))
        log.info("incident.grouped", incident_id=incident.id, target=signal.target)
        return True

    def _upkeep(self, report: AnalyzeReport, now: float, recent: _Recent) -> None:
        waiting = (IncidentStatus.OPEN, IncidentStatus.ESCALATED, IncidentStatus.AWAITING_APPROVAL)
        for incident in self.store.incidents.with_status(waiting):
            cleared = not self._still_firing(incident, now, recent)
            if cleared and self.store.incidents.advance(
                incident.id, waiting, IncidentStatus.RESOLVED
            ):
                report.cleared.append(incident.id)

    def _judge_services(self, now: float) -> list[Signal]:
        signals = []
        for service, keys in self._services().items():
            verdict = self._judge(keys, now)
            if verdict is None or not verdict.anomalous:
                continue
            moved = sorted(verdict.deviations.items(), key=lambda item: -abs(item[1]))[:3]
            signals.append(
                Signal(
                    pattern=SERVICE_PATTERN,
                    target=series_key("service", {"service": service}),
                    severity=Severity.MEDIUM,
                    onset=now,
                    value=verdict.score,
                    described=f"IsolationForest over {len(keys)} series scores the latest "
                    f"moment {verdict.score:.2f}; moved most: "
                    + ", ".join(f"{key} ({z:+.1f} robust sd)" for key, z in moved),
                    evidence={"score": verdict.score, "deviations": verdict.deviations},
                )
            )
        return signals

    def _services(self) -> dict[str, list[str]]:
        """The chosen services' series keys, by the series' ``service`` label."""
        chosen = set(self.settings.services)
        services: dict[str, list[str]] = {}
        for cursor in self.store.samples.cursors():
            service = parse_series_key(cursor.key)[1].get("service")
            if service is not None and ("*" in chosen or service in chosen):
                services.setdefault(service, []).append(cursor.key)
        return services

    def _judge(self, keys: list[str], now: float) -> ServiceVerdict | None:
        since = now - (SERVICE_HISTORY_BUCKETS + 1) * self.settings.forest.bucket_seconds
        windows = {key: self.store.samples.window(key, since) for key in keys}
        return self.settings.forest.judge(windows)

    def _still_firing(self, incident: Incident, now: float, recent: _Recent) -> bool:
        if incident.pattern == SERVICE_PATTERN:
            _, labels = parse_series_key(incident.target)
            verdict = self._judge(self._services().get(labels.get("service", ""), []), now)
            return verdict is not None and verdict.anomalous
        if incident.pattern == ANOMALY_PATTERN:
            low, high = incident.evidence["band"]
            recent = self.store.samples.window(incident.target, now - 3600)
            tail = [value for _, value in recent[-self.settings.clear_points :]]
            return not tail or any(not low <= value <= high for value in tail)
        pattern = self.patterns.get(incident.pattern)
        if pattern is None:
            # The integration check judges its own incidents; a pattern removed from the
            # catalogue is left to a person.
            return True
        # Judged by the limits it opened on, as its verification is.
        opened_on = recorded(incident.evidence, incident.target, recent.bands)
        matches = self._match(pattern, now, recent, opened_on)
        return any(match.target == incident.target for match in matches)


def _matching_logs(condition: LogCondition, logs: list[LogEvent], now: float) -> list[str]:
    regex = re.compile(condition.regex, re.IGNORECASE)
    level = condition.level.upper()
    return [
        event.message
        for event in logs
        if event.ts > now - condition.window
        and event.level.upper() == level
        and regex.search(event.message)
    ]


def _host(recent: list[Incident], signal: Signal) -> Incident | None:
    """The recent incident whose members are related to the signal's series, if any."""
    for incident in recent:
        if any(related(member["target"], signal.target) for member in _members(incident)):
            return incident
    return None


def _members(incident: Incident) -> list[dict[str, Any]]:
    own = {
        "pattern": incident.pattern,
        "target": incident.target,
        "onset": incident.opened_at,
        "value": None,
        "described": incident.root_cause or incident.pattern,
    }
    return list(incident.evidence.get("members", [own]))


def _root_cause(member: dict[str, Any]) -> str:
    if member["value"] is None:
        return member["described"]
    return f"{member['described']}: {member['value']:g} on {member['target']}"
