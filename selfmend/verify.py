"""The verify stage: re-measure the incident's series after the fix settled, and judge.

Fixed means the whole hold window after the settle delay is back in band: no metric condition
of the pattern that reads the incident's series holds over those samples (in a composite, the
other series are context, not the symptom being fixed), or, for a detector incident, every
sample lies in the band the detector knew before the fault; for a task alias, no message under
the wrong name failed in the workers' logs over the window. Not fixed owes a rollback, paid at
once (``selfmend/remedy/rollback.py``). Too early returns ``NotYet`` with the seconds to wait:
the task reschedules itself, a worker never sleeps.

Verify judges the execution it was sent, by its applied row, never whatever the incident holds
now: a late, replayed or racing verify of a fix that is no longer the incident's current one
(judged already, or superseded by the next candidate) is a no-op with an ``ignored`` row in the
audit log. The verdict's keyed row (``verified`` or ``rollback_owed``) commits with the
incident's move, so of two verifies of one fix only one verdict is ever counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from selfmend.credit import Credit
from selfmend.detect.patterns import Pattern
from selfmend.detect.streaming import ANOMALY_PATTERN
from selfmend.detect.unregistered import UNREGISTERED_TASK_PATTERN, logged
from selfmend.models import ExecutionState, IncidentStatus, Risk, Verdict
from selfmend.remedy.attempt import Attempt
from selfmend.remedy.catalogue import Catalogue
from selfmend.remedy.choice import FixChooser
from selfmend.remedy.current import not_current, sent
from selfmend.remedy.executor import Remediation
from selfmend.remedy.rollback import Rollbacks, owing
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
        self.rollbacks = Rollbacks(store, catalogue)
        self.credit = Credit(store, settle_seconds=settle_seconds, min_samples=min_samples)
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
            if not remediation.applied:
                reason = f"nothing to verify: {remediation.reason}"
                return Judgement(incident.id, "none", str(incident.status), {}, {"reason": reason})
            history = self.store.executions.history(incident.id, connection)
            applied = sent(history, remediation)
            stale = not_current(incident, history, applied, remediation)
            if stale is None:
                start = applied.created_at + self.settle_seconds
                end = start + self.window_seconds
                if now < end:
                    return NotYet(end - now, "hold window not over")
                points = self.store.samples.window(
                    incident.series_key or "", start, end, connection
                )
        if stale is not None:
            return self._ignore(incident, remediation, applied, stale)
        if incident.pattern == UNREGISTERED_TASK_PATTERN:
            verdict, after = self._routed(incident, start, end)
        elif len(points) >= self.min_samples:
            verdict, after = self._in_band(incident, points)
        elif now < applied.created_at + self.longest_wait:
            return NotYet(self.window_seconds / 2, f"{len(points)} fresh samples so far")
        else:
            after = {"samples": len(points), "reason": "no fresh measurements"}
            verdict = Verdict.NOT_FIXED
        pattern = self.patterns.get(incident.pattern)
        window = pattern.window if pattern is not None else self.window_seconds
        uncredited = self.credit.uncredited(incident, applied, verdict, window, self._in_band)
        if uncredited is not None:
            after = uncredited.after(after, back_in_band=verdict is Verdict.FIXED)
            return self._judge(incident, applied, history, Verdict.UNCREDITED, after)
        return self._judge(incident, applied, history, verdict, after)

    def _in_band(
        self, incident: Incident, points: list[tuple[float, float]]
    ) -> tuple[Verdict, dict[str, Any]]:
        if incident.pattern == ANOMALY_PATTERN:
            low, high = incident.evidence["band"]
            outside = sum(not low <= value <= high for _, value in points)
            verdict = Verdict.FIXED if outside == 0 else Verdict.NOT_FIXED
            return verdict, {"samples": len(points), "outside_band": outside, "band": [low, high]}
        # Every metric condition of the pattern that reads the incident's series must clear,
        # judged against the limit detection recorded: a learned band moves with time, and the
        # fix answers the limit the incident was opened on. A condition with neither a recorded
        # limit nor a threshold (a learned one that did not hold on this series) is not judged.
        metrics = self.patterns[incident.pattern].condition.metric_conditions()
        recorded = incident.evidence.get("limits", {})
        limits = {
            c.describe(): (c, limit)
            for c in metrics
            if c.selects(incident.series_key or "")
            and (limit := c.recorded_limit(recorded)) is not None
        }
        values = {text: c.aggregate_of(points) for text, (c, _) in limits.items()}
        holding = [text for text, (c, limit) in limits.items() if c.holds(values[text], limit)]
        verdict = Verdict.FIXED if limits and not holding else Verdict.NOT_FIXED
        judged = {text: limit for text, (_, limit) in limits.items()}
        return verdict, {
            "samples": len(points),
            "values": values,
            "limits": judged,
            "still_holding": holding,
        }

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
        applied: Execution,
        history: list[Execution],
        verdict: Verdict,
        after: dict[str, Any],
    ) -> Judgement:
        action = self.catalogue.get(applied.action)
        claim = ExecutionLog.step_in(history, incident.id, action.name, ExecutionState.APPLYING)
        attempt = Attempt.from_claim(self.store, ACTOR, incident, action, claim or applied)
        before = {"root_cause": incident.root_cause, **incident.evidence}
        status, row = self._verdict_row(incident, attempt, applied, history, verdict, after)
        judged = self._commit(incident, applied, row, status, verdict, before, after)
        if judged is None:  # another delivery judged it first, since it was read
            fresh = self.store.incidents.get(incident.id)
            latest = self.store.executions.history(incident.id)
            why = not_current(fresh, latest, applied) or "another delivery judged it first"
            return self._ignore(fresh, Remediation.already_applied(applied, why), applied, why)
        if status is IncidentStatus.ROLLING_BACK:
            status = self.rollbacks.pay(incident, judged, ACTOR)
        log.info("incident.verified", incident_id=incident.id, verdict=str(verdict))
        return Judgement(incident.id, str(verdict), str(status), before, after)

    def _verdict_row(
        self,
        incident: Incident,
        attempt: Attempt,
        applied: Execution,
        history: list[Execution],
        verdict: Verdict,
        after: dict[str, Any],
    ) -> tuple[IncidentStatus, dict[str, Any]]:
        """What the incident becomes, and the verdict's row.

        Fixed resolves it. Not fixed owes a rollback, then the next candidate or a person. A
        fix not credited that changed something is undone like one that failed, and the
        incident is resolved (its series is back); one that changed nothing has nothing to
        undo, and the incident is resolved if its series is back, else open for the next
        candidate."""
        if verdict is Verdict.FIXED:
            return IncidentStatus.RESOLVED, attempt.row(
                ExecutionState.VERIFIED, "back in band", result=after
            )
        if verdict is Verdict.NOT_FIXED:
            then = self._after_rollback(incident, attempt.action.name, history)
            return IncidentStatus.ROLLING_BACK, owing(attempt, then, after)
        if self.credit.changed_nothing(applied) is None:
            undo = owing(attempt, IncidentStatus.RESOLVED, after, why=after["reason"])
            return IncidentStatus.ROLLING_BACK, undo
        status = IncidentStatus.RESOLVED if after["back_in_band"] else IncidentStatus.OPEN
        return status, attempt.row(ExecutionState.UNCREDITED, after["reason"], result=after)

    def _commit(
        self,
        incident: Incident,
        applied: Execution,
        row: dict[str, Any],
        status: IncidentStatus,
        verdict: Verdict,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> Execution | None:
        """The verdict's keyed row, the incident's move and the outcome count, together; None
        (and nothing written) if the incident moved on or this fix was judged already.

        The move comes first: it locks the incident's row (SQLite's write lock), and every
        other verdict, and the apply of the next candidate, moves that row too. The log read
        after it is therefore final for this fix: if another delivery judged it, or the next
        candidate was applied, since this verify read it (the incident verifying again, for
        the later fix), the move is undone."""
        try:
            with self.store.engine.begin() as connection:
                if not self.store.incidents.advance(
                    incident.id, [IncidentStatus.VERIFYING], status, connection
                ):
                    return None
                latest = self.store.executions.history(incident.id, connection)
                if not_current(incident, latest, applied) is not None:
                    raise _Judged()
                judged = self.store.executions.append(connection, row_values(**row))
                if judged is None:
                    raise _Judged()
                self.store.outcomes.record(
                    connection,
                    incident_id=incident.id,
                    execution_id=applied.id,
                    pattern=incident.pattern,
                    action=applied.action,
                    before=before,
                    after=after,
                    verdict=verdict,
                )
        except _Judged:
            return None
        return judged

    def _ignore(
        self,
        incident: Incident,
        remediation: Remediation,
        applied: Execution | None,
        why: str,
    ) -> Judgement:
        """A verify of a fix that is no longer current: no verdict, one row saying so."""
        reason = f"verify of execution {remediation.execution_id} ignored: {why}"
        action = applied.action if applied else remediation.action or "verify"
        self.store.executions.record(
            incident_id=incident.id,
            action=action,
            target=applied.target if applied else incident.target,
            state=ExecutionState.IGNORED,
            risk=applied.risk if applied else Risk.LOW,
            actor=ACTOR,
            reason=reason,
            once=False,
        )
        log.info("verify.ignored", incident_id=incident.id, reason=reason)
        return Judgement(incident.id, "none", str(incident.status), {}, {"reason": reason})

    def _after_rollback(
        self, incident: Incident, action: str, history: list[Execution]
    ) -> IncidentStatus:
        """Open again while another candidate fix is left (the backlog hands it to remediation
        once the rollback is done), else rolled back for good."""
        if self.chooser.next(incident, finishing=[action], history=history) is not None:
            return IncidentStatus.OPEN
        return IncidentStatus.ROLLED_BACK


class _Judged(Exception):
    """Rolls back a verdict whose fix another delivery judged first."""
