"""The verify stage: re-measure the incident's series after the fix settled, and judge.

Fixed means the whole hold window after the settle delay is back in band: no metric condition
of the pattern that reads the incident's series holds over those samples (in a composite, the
other series are context, not the symptom being fixed), or, for a detector incident, every
sample lies in the band the detector knew before the fault; for a task alias, no message under
the wrong name failed in the workers' logs over the window. Not fixed rolls the action back.
Too early returns ``NotYet`` with the seconds to wait: the task reschedules itself, a worker
never sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection

from selfmend.detect.analyze import ANOMALY_PATTERN
from selfmend.detect.patterns import Pattern
from selfmend.detect.unregistered import UNREGISTERED_TASK_PATTERN, logged
from selfmend.models import ExecutionState, IncidentStatus, Verdict
from selfmend.remedy.attempt import Attempt
from selfmend.remedy.catalogue import Catalogue
from selfmend.remedy.choice import FixChooser
from selfmend.remedy.escalation import tell
from selfmend.remedy.executor import Remediation
from selfmend.remedy.notify import ROLLED_BACK
from selfmend.store import Store
from selfmend.store.executions import Execution, ExecutionLog, row_values
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

ACTOR = "selfmend.verify"


@dataclass(frozen=True)
class NotYet:
    retry_in: float
    reason: str


@dataclass(frozen=True)
class Judgement:
    incident_id: int
    verdict: str
    status: str
    before: dict[str, Any]
    after: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Verifier:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        patterns: tuple[Pattern, ...],
        *,
        settle_seconds: float,
        window_seconds: float,
        min_samples: int,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.patterns = {pattern.name: pattern for pattern in patterns}
        self.chooser = FixChooser(store, self.patterns)
        self.settle_seconds = settle_seconds
        self.window_seconds = window_seconds
        self.min_samples = min_samples

    @property
    def first_check_after(self) -> float:
        return self.settle_seconds + self.window_seconds

    @property
    def longest_wait(self) -> float:
        """From the apply to the last look: the hold window, then two more waiting for samples."""
        return self.first_check_after + 2 * self.window_seconds

    def verify(self, remediation: Remediation, now: float | None = None) -> Judgement | NotYet:
        now = time.time() if now is None else now
        with self.store.reading() as connection:
            incident = self.store.incidents.get(remediation.incident_id, connection)
            if not remediation.applied or incident.status is not IncidentStatus.VERIFYING:
                return Judgement(
                    incident.id,
                    "none",
                    str(incident.status),
                    {},
                    {"reason": f"nothing to verify: {remediation.reason}"},
                )
            start = remediation.applied_at + self.settle_seconds
            end = start + self.window_seconds
            if now < end:
                return NotYet(end - now, "hold window not over")
            history = self.store.executions.history(incident.id, connection)
            points = self.store.samples.window(incident.series_key or "", start, end, connection)
        if incident.pattern == UNREGISTERED_TASK_PATTERN:
            return self._judge(incident, remediation, history, *self._routed(incident, start, end))
        if len(points) < self.min_samples:
            if now < remediation.applied_at + self.longest_wait:
                return NotYet(self.window_seconds / 2, f"{len(points)} fresh samples so far")
            return self._judge(
                incident,
                remediation,
                history,
                Verdict.NOT_FIXED,
                {"samples": len(points), "reason": "no fresh measurements"},
            )
        verdict, after = self._in_band(incident, points)
        return self._judge(incident, remediation, history, verdict, after)

    def _in_band(
        self, incident: Incident, points: list[tuple[float, float]]
    ) -> tuple[Verdict, dict[str, Any]]:
        if incident.pattern == ANOMALY_PATTERN:
            low, high = incident.evidence["band"]
            outside = sum(not low <= value <= high for _, value in points)
            verdict = Verdict.FIXED if outside == 0 else Verdict.NOT_FIXED
            return verdict, {"samples": len(points), "outside_band": outside, "band": [low, high]}
        # Every metric condition of the pattern that reads the incident's series must clear.
        metrics = self.patterns[incident.pattern].condition.metric_conditions()
        judged = {c.describe(): c for c in metrics if c.selects(incident.series_key or "")}
        values = {text: c.aggregate_of(points) for text, c in judged.items()}
        holding = [text for text, c in judged.items() if c.holds(values[text])]
        verdict = Verdict.FIXED if judged and not holding else Verdict.NOT_FIXED
        return verdict, {"samples": len(points), "values": values, "still_holding": holding}

    def _routed(
        self, incident: Incident, start: float, end: float
    ) -> tuple[Verdict, dict[str, Any]]:
        """An alias is judged by the workers' log lines: no message under the wrong name may
        fail as unregistered during the hold window."""
        name = incident.evidence["name"]
        failed = [sighting for sighting in logged(self.store, start, end) if sighting.name == name]
        verdict = Verdict.NOT_FIXED if failed else Verdict.FIXED
        return verdict, {"unregistered_since_fix": len(failed), "seen": [f.where for f in failed]}

    def _judge(
        self,
        incident: Incident,
        remediation: Remediation,
        history: list[Execution],
        verdict: Verdict,
        after: dict[str, Any],
    ) -> Judgement:
        action = self.catalogue.get(remediation.action or "")
        status = self._status_after(incident, verdict, action.name, history)
        claim = ExecutionLog.step_in(history, incident.id, action.name, ExecutionState.APPLYING)
        attempt = Attempt.from_claim(self.store, ACTOR, incident, action, claim)
        before = {"root_cause": incident.root_cause, **incident.evidence}
        # The verdict, its outcome count, its row and any message move the incident together;
        # whoever moves it owns the verdict, and a second delivery records nothing.
        with self.store.engine.begin() as connection:
            owned = self.store.incidents.advance(
                incident.id, [IncidentStatus.VERIFYING], status, connection
            )
            if owned:
                self.store.outcomes.record(
                    connection,
                    incident_id=incident.id,
                    execution_id=remediation.execution_id or claim.id,
                    pattern=incident.pattern,
                    action=action.name,
                    before=before,
                    after=after,
                    verdict=verdict,
                )
                self._record_verdict(connection, attempt, verdict, status, after, history)
        if not owned:
            current = self.store.incidents.get(incident.id).status
            return Judgement(incident.id, "none", str(current), {}, {"reason": "already judged"})
        if verdict is not Verdict.FIXED:
            self._roll_back(attempt, after)
        log.info("incident.verified", incident_id=incident.id, verdict=str(verdict))
        return Judgement(incident.id, str(verdict), str(status), before, after)

    def _record_verdict(
        self,
        connection: Connection,
        attempt: Attempt,
        verdict: Verdict,
        status: IncidentStatus,
        after: dict[str, Any],
        history: list[Execution],
    ) -> None:
        """A fix is logged verified; a last failed candidate is reported to a person."""
        if verdict is Verdict.FIXED:
            row = attempt.row(ExecutionState.VERIFIED, "back in band", result=after)
            self.store.executions.append(connection, row_values(**row))
        elif status is IncidentStatus.ROLLED_BACK:
            action = attempt.action.name
            reason = f"{action} did not fix it and is rolled back; no other candidate fix is left"
            tell(self.store, connection, attempt.incident.id, ROLLED_BACK, reason, history)

    def _status_after(
        self, incident: Incident, verdict: Verdict, action: str, history: list[Execution]
    ) -> IncidentStatus:
        """Resolved when fixed; when not, open again while another candidate fix is left (the
        next analyze pass hands it to remediation), else rolled back for good."""
        if verdict is Verdict.FIXED:
            return IncidentStatus.RESOLVED
        if self.chooser.next(incident, finishing=[action], history=history) is not None:
            return IncidentStatus.OPEN
        return IncidentStatus.ROLLED_BACK

    def _roll_back(self, attempt: Attempt, after: dict[str, Any]) -> None:
        try:
            result = attempt.action.rollback(attempt.plan)
        except Exception as error:
            log.exception("verify.rollback_failed", incident_id=attempt.incident.id)
            attempt.log(ExecutionState.FAILED, f"rollback failed: {error}", result=after)
            judged = [IncidentStatus.ROLLED_BACK, IncidentStatus.OPEN]  # no next candidate now
            self.store.incidents.advance(attempt.incident.id, judged, IncidentStatus.ESCALATED)
            return
        undone = "rolled back" if attempt.action.reversible else "not reversible, nothing undone"
        attempt.log(
            ExecutionState.ROLLED_BACK,
            f"verification failed: {undone}",
            result={**after, "rollback": result},
        )
