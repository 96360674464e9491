"""The analyze stage: new points through the detectors, recent windows through the patterns.

A series that some pattern names is judged by that pattern (its anomalies are stored, not made
incidents); the detector opens incidents for every other series. Incidents whose condition has
cleared are resolved here, and incidents a person approved are handed back for remediation.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from selfmend.detect.mad import RollingMAD
from selfmend.detect.patterns import LogCondition, Match, Pattern
from selfmend.models import Anomaly, ExecutionState, IncidentStatus, Severity
from selfmend.store import Store
from selfmend.store.incidents import Incident
from selfmend.store.samples import SeriesCursor

log = structlog.get_logger(__name__)

ANOMALY_PATTERN = "anomaly"
LOG_TARGET = "logs"


@dataclass(frozen=True)
class DetectorSettings:
    window: int = 120
    threshold: float = 0.99
    min_points: int = 3


@dataclass
class AnalyzeReport:
    series: int = 0
    points: int = 0
    anomalies: int = 0
    new_incidents: list[int] = field(default_factory=list)
    approved: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Analyzer:
    def __init__(
        self, store: Store, patterns: tuple[Pattern, ...], detector: DetectorSettings
    ) -> None:
        self.store = store
        self.patterns = {pattern.name: pattern for pattern in patterns}
        self.detector = detector
        self._pattern_series = {
            metric.series for p in patterns for metric in p.condition.metric_conditions()
        }

    def run(self, now: float | None = None, shard: int = 0, shards: int = 1) -> AnalyzeReport:
        now = time.time() if now is None else now
        report = AnalyzeReport()
        if shard == 0:  # patterns and incident upkeep read across series: one shard does them
            for match in self.matches(now):
                self._open(
                    report,
                    match.pattern.name,
                    match.target,
                    match.pattern.severity,
                    match.pattern.condition.describe(),
                    match.value,
                    match.evidence,
                )
            self._upkeep(report, now)
        self._detect(report, shard, shards)
        return report

    def matches(self, now: float) -> list[Match]:
        found: list[Match] = []
        for pattern in self.patterns.values():
            found += self._match(pattern, now)
        return found

    def _match(self, pattern: Pattern, now: float) -> list[Match]:
        condition = pattern.condition
        if isinstance(condition, LogCondition):
            lines = self._matching_logs(condition, now)
            if not lines:
                return []
            return [Match(pattern, LOG_TARGET, float(len(lines)), {"lines": lines[:5]})]
        held = condition.holding(self.store.samples.windows_by_name, now)
        return [Match(pattern, key, value, {"value": value}) for key, value in held.items()]

    def _matching_logs(self, condition: LogCondition, now: float) -> list[str]:
        regex = re.compile(condition.regex, re.IGNORECASE)
        return [
            event.message
            for event in self.store.samples.logs_since(now - condition.window)
            if event.level.upper() == condition.level.upper() and regex.search(event.message)
        ]

    def _open(
        self,
        report: AnalyzeReport,
        pattern: str,
        target: str,
        severity: Severity,
        described: str,
        value: float,
        evidence: dict[str, Any],
    ) -> None:
        incident, created = self.store.incidents.open(
            pattern=pattern,
            target=target,
            severity=severity,
            series_key=None if target == LOG_TARGET else target,
            root_cause=f"{described}: {value:g} on {target}",
            evidence=evidence,
        )
        if created:
            report.new_incidents.append(incident.id)
            log.info("incident.opened", incident_id=incident.id, pattern=pattern, target=target)

    def _upkeep(self, report: AnalyzeReport, now: float) -> None:
        waiting = (IncidentStatus.OPEN, IncidentStatus.ESCALATED, IncidentStatus.AWAITING_APPROVAL)
        for incident in self.store.incidents.with_status(waiting):
            if not self._still_firing(incident, now):
                if self.store.incidents.advance(incident.id, waiting, IncidentStatus.RESOLVED):
                    report.cleared.append(incident.id)
            elif incident.status is IncidentStatus.AWAITING_APPROVAL and self._approved(incident):
                report.approved.append(incident.id)

    def _approved(self, incident: Incident) -> bool:
        return any(
            e.state is ExecutionState.APPROVED for e in self.store.executions.history(incident.id)
        )

    def _still_firing(self, incident: Incident, now: float) -> bool:
        if incident.pattern == ANOMALY_PATTERN:
            low, high = incident.evidence["band"]
            recent = self.store.samples.window(incident.target, now - 3600)
            tail = [value for _, value in recent[-self.detector.min_points :]]
            return not tail or any(not low <= value <= high for value in tail)
        pattern = self.patterns.get(incident.pattern)
        if pattern is None:
            return True  # a pattern removed from the catalogue: leave it to a person
        return any(match.target == incident.target for match in self._match(pattern, now))

    def _detect(self, report: AnalyzeReport, shard: int, shards: int) -> None:
        cursors = self.store.samples.cursors(shard, shards)
        points = self.store.samples.new_points(cursors)
        for cursor in cursors:
            new = points.get(cursor.id)
            if new:
                self._detect_series(report, cursor, new)

    def _detect_series(
        self, report: AnalyzeReport, cursor: SeriesCursor, new: list[tuple[float, float]]
    ) -> None:
        state = cursor.detector_state or {}
        detector = (
            RollingMAD.from_state(state["model"])
            if "model" in state
            else RollingMAD(window=self.detector.window)
        )
        band_before = detector.band()
        timestamps = np.array([ts for ts, _ in new])
        values = np.array([value for _, value in new])
        scores = detector.score_many(timestamps, values)
        anomalous = scores >= self.detector.threshold
        found = [
            Anomaly(series=cursor.key, ts=ts, value=value, score=score, detector=detector.name)
            for ts, value, score, hit in zip(timestamps, values, scores, anomalous, strict=True)
            if hit
        ]
        self.store.samples.insert_anomalies(cursor.id, found)
        run, crossed = _runs(anomalous, state.get("run", 0), self.detector.min_points)
        if crossed and band_before is not None and cursor.name not in self._pattern_series:
            self._open(
                report,
                ANOMALY_PATTERN,
                cursor.key,
                Severity.MEDIUM,
                f"{detector.name} score ≥ {self.detector.threshold:g} for "
                f"{self.detector.min_points} points",
                float(values[-1]),
                {"band": list(band_before)},
            )
        self.store.samples.save_cursor(
            cursor.id, float(timestamps[-1]), {"model": detector.to_state(), "run": run}
        )
        report.series += 1
        report.points += len(new)
        report.anomalies += len(found)


def _runs(anomalous: np.ndarray, run: int, length: int) -> tuple[int, bool]:
    """Continue the last batch's run of anomalous points through this batch.

    Returns the run the batch ends with and whether any run reached ``length`` in it.
    """
    crossed = False
    for hit in anomalous:
        run = run + 1 if hit else 0
        crossed = crossed or run == length
    return run, crossed
