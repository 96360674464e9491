"""The analyze stage: new points through the detectors, recent windows through the patterns.

A series that some pattern names is judged by that pattern (its anomalies are stored, not made
incidents); the detector raises signals for every other series. Signals on related series
become one incident (``correlate``). Incidents whose condition has cleared are resolved here;
which waiting incidents are due for remediation again is the backlog's to say (``remedy``).
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from selfmend.detect.base import Detector
from selfmend.detect.baseline import BandReader, recorded
from selfmend.detect.choice import DetectorChoice, choice_for
from selfmend.detect.correlate import Signal, priority, rank, related
from selfmend.detect.history import Baselines
from selfmend.detect.multivariate import ServiceForest, ServiceVerdict
from selfmend.detect.patterns import LogCondition, Match, Pattern, SeriesReader
from selfmend.models import (
    Anomaly,
    IncidentStatus,
    LogEvent,
    Severity,
    parse_series_key,
    series_key,
)
from selfmend.store import Store
from selfmend.store.incidents import Incident
from selfmend.store.samples import CursorUpdate, NewPoints, SeriesCursor

log = structlog.get_logger(__name__)

ANOMALY_PATTERN = "anomaly"
SERVICE_PATTERN = "service_anomaly"
SERVICE_HISTORY_BUCKETS = 240
SAVE_EVERY = 1000  # series per transaction of an analyze pass
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
class AnalyzeReport:
    series: int = 0
    points: int = 0
    anomalies: int = 0
    new_incidents: list[int] = field(default_factory=list)
    grouped: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Watch:
    """A series' detector, the last point it scored, and an alarm not yet confirmed or dropped
    (the band it broke holds until it is settled)."""

    until: float
    detector: Detector
    pending: dict[str, Any] | None

    def to_state(self) -> dict[str, Any]:
        return {"model": self.detector.to_state(), "pending": self.pending}


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
        # What this process left each series with, by series id: reused while the store's
        # cursor still stands where it left it, so a warm pass reads no saved state.
        self._warm: dict[int, _Watch] = {}

    def run(self, now: float | None = None, shard: int = 0, shards: int = 1) -> AnalyzeReport:
        now = time.time() if now is None else now
        report = AnalyzeReport()
        signals: list[Signal] = []
        if shard == 0:  # patterns and incident upkeep read across series: one shard does them
            recent = self._recent(now)
            self._upkeep(report, now, recent)
            signals += [self._signal(match, now) for match in self.matches(now, recent)]
        with _collector_paused():
            try:
                self._detect(report, shard, shards, signals)
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

    def _detect(
        self, report: AnalyzeReport, shard: int, shards: int, signals: list[Signal]
    ) -> None:
        """Score the shard's new points, saving ``SAVE_EVERY`` series a transaction; add the
        signals of each part once it is saved.

        A series' cursor, state and anomalies are saved together, so a pass that fails part-way
        leaves each series saved or as it was, and the next pass scores the rest again. Saving
        in parts lets one worker's save overlap another's scoring: SQLite takes one writer at a
        time, and two workers' whole-pass saves met at the end of every pass.
        """
        pending = self.store.samples.new_points(shard, shards)
        cold = [cursor.id for cursor, _ in pending if not self._warm_for(cursor)]
        saved = self.store.samples.detector_states(cold)
        for first in range(0, len(pending), SAVE_EVERY):
            signals += self._detect_part(report, pending[first : first + SAVE_EVERY], saved)

    def _detect_part(
        self,
        report: AnalyzeReport,
        pending: list[tuple[SeriesCursor, NewPoints]],
        saved: dict[int, dict[str, Any]],
    ) -> list[Signal]:
        signals: list[Signal] = []
        updates: list[CursorUpdate] = []
        found: list[Anomaly] = []
        for cursor, new in pending:
            watch = self._warm_for(cursor) or self._restore(cursor, saved.get(cursor.id))
            self._warm.pop(cursor.id, None)  # back once scored: a failure leaves it restored
            signal = self._detect_series(cursor, watch, new, found)
            if signal is not None:
                signals.append(signal)
            updates.append(CursorUpdate(cursor.id, cursor.key, watch.until, watch.to_state()))
            self._warm[cursor.id] = watch
        self.store.samples.save_analysis(updates, found)
        report.series += len(pending)
        report.points += sum(len(new.values) for _, new in pending)
        report.anomalies += len(found)
        return signals

    def _warm_for(self, cursor: SeriesCursor) -> _Watch | None:
        """This process's watch over the series if the store's cursor still stands where it left
        it; else another worker moved on, or the pass that advanced it was not saved."""
        watch = self._warm.get(cursor.id)
        return watch if watch is not None and watch.until == cursor.analyzed_until else None

    def _restore(self, cursor: SeriesCursor, saved: dict[str, Any] | None) -> _Watch:
        saved = saved or {}
        choice = choice_for(cursor.name, self.settings.detectors)
        return _Watch(
            cursor.analyzed_until, choice.restore(saved.get("model")), saved.get("pending")
        )

    def _detect_series(
        self, cursor: SeriesCursor, watch: _Watch, new: NewPoints, found: list[Anomaly]
    ) -> Signal | None:
        """Score the series' new points and store its anomalies; a signal once one is confirmed.

        Every anomaly is stored, but only one the series has not recovered from raises a
        signal: the detector is tuned to alarm early (NAB rewards it), and on pure noise it
        alarms about once in 350 points, almost always on a point or a short run that is back
        in the band a moment later. An alarm is pending until the latest ``clear_points``
        values are all outside the band it broke (a signal) or the latest value is back inside
        (dropped); the pending alarm is kept in the series' saved state across passes.
        """
        detector = watch.detector
        before = detector.clone()  # where an alarm's band is read, without restoring again
        timestamps, values = new.timestamps, new.values
        scores = detector.score_many(timestamps, values)
        hits = np.flatnonzero(scores >= detector.threshold)
        found += [  # built from the detector's own floats: nothing to validate
            Anomaly.model_construct(
                series=cursor.key,
                ts=float(timestamps[i]),
                value=float(values[i]),
                score=float(scores[i]),
                detector=detector.name,
            )
            for i in hits
        ]
        if watch.pending is None and hits.size and cursor.name not in self._pattern_series:
            watch.pending = _alarm(before, new, scores, hits[0])
        signal, watch.pending = self._confirm(cursor, watch.pending, values)
        watch.until = float(timestamps[-1])
        return signal

    def _confirm(
        self, cursor: SeriesCursor, pending: dict[str, Any] | None, values: np.ndarray
    ) -> tuple[Signal | None, dict[str, Any] | None]:
        """A signal if the pending alarm held, and what is still pending."""
        if pending is None:
            return None, None
        low, high = pending["band"]
        outside = (values < low) | (values > high)
        if not outside[-1]:
            return None, None
        tail = outside[-self.settings.clear_points :]
        if tail.size < self.settings.clear_points or not tail.all():
            return None, pending
        signal = Signal(
            pattern=ANOMALY_PATTERN,
            target=cursor.key,
            severity=Severity.MEDIUM,
            onset=pending["onset"],
            value=pending["value"],
            described=f"{pending['detector']} score {pending['score']:.2f}, still outside "
            f"[{low:.4g}, {high:.4g}]",
            evidence={"band": pending["band"], "score": pending["score"]},
        )
        return signal, None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the detection loop.

    A pass over ten thousand series allocates a hundred thousand containers that outlive it
    (saved states, detectors, their watches), and each batch of survivors sets off another
    collection of the whole heap: a third of a cold pass. What the loop drops, reference
    counting frees at once; the few cycles (database objects) wait for the collector, which
    resumes after the loop.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


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


def _alarm(
    before: Detector, new: NewPoints, scores: np.ndarray, first: int
) -> dict[str, Any] | None:
    """The first alarm of the batch, with the band it broke: ``before`` is the detector as it
    was before the batch, taken up to the alarm."""
    before.score_many(new.timestamps[:first], new.values[:first])
    band = before.band()
    if band is None:
        return None
    return {
        "onset": float(new.timestamps[first]),
        "value": float(new.values[first]),
        "score": float(scores[first]),
        "band": list(band),
        "detector": before.name,
    }


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
