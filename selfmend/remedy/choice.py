"""Choosing the fix: which of an incident's candidate actions it tries next.

The candidates are the pattern's actions, or the one fix the stage that opened the incident
proposed (the integration check's alias). They are ranked by the posterior mean of a
Beta(1 + fixed, 1 + not fixed) over every verification of (pattern, action): what fixed this
pattern most often comes first, an untried action counts as even odds, and ties keep the
pattern's order. An action the incident finished (verified, failed, rolled back or owing its
rollback) is not tried on it again; one it started (waiting for approval, approved, or claimed
for applying) is taken up again before any other, so a person's approval or a redelivered
message is never overtaken.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from selfmend.detect.patterns import ActionSpec, Pattern
from selfmend.models import ExecutionState
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident

FINISHED = frozenset(
    {
        ExecutionState.VERIFIED,
        ExecutionState.UNCREDITED,
        ExecutionState.ROLLBACK_OWED,
        ExecutionState.ROLLED_BACK,
        ExecutionState.FAILED,
    }
)
STARTED = frozenset(
    {ExecutionState.AWAITING_APPROVAL, ExecutionState.APPROVED, ExecutionState.APPLYING}
)


@dataclass(frozen=True)
class Candidate:
    spec: ActionSpec
    fixed: int = 0
    not_fixed: int = 0

    @property
    def success_rate(self) -> float:
        """The posterior mean of Beta(1 + fixed, 1 + not fixed)."""
        return (1 + self.fixed) / (2 + self.fixed + self.not_fixed)

    def reason(self) -> str:
        tried = self.fixed + self.not_fixed
        record = f"fixed {self.fixed} of {tried}" if tried else "untried"
        return f"{self.spec.name}: {record} here, success rate {self.success_rate:.2f}"


def ranked(specs: tuple[ActionSpec, ...], counts: Mapping[str, tuple[int, int]]) -> list[Candidate]:
    """The candidates, best success rate first; ``counts`` is action → (fixed, not fixed)."""
    candidates = [Candidate(spec, *counts.get(spec.name, (0, 0))) for spec in specs]
    return sorted(candidates, key=lambda candidate: -candidate.success_rate)


class FixChooser:
    def __init__(self, store: Store, patterns: Mapping[str, Pattern]) -> None:
        self.store = store
        self.patterns = patterns

    def candidates(self, incident: Incident) -> tuple[ActionSpec, ...]:
        """The pattern's actions, or the opening stage's proposal; a malformed proposal raises
        pydantic's ValidationError, naming the field."""
        pattern = self.patterns.get(incident.pattern)
        if pattern is not None:
            return pattern.actions
        proposal = incident.evidence.get("proposal")
        return () if proposal is None else (ActionSpec.model_validate(proposal),)

    def next(
        self,
        incident: Incident,
        finishing: Collection[str] = (),
        history: list[Execution] | None = None,
    ) -> Candidate | None:
        """The candidate to try now, or None when every one was tried; ``finishing`` names
        actions being finished right now, whose rows are not written yet; ``history`` is the
        incident's audit log if the caller has just read it."""
        if history is None:
            history = self.store.executions.history(incident.id)
        finished = {e.action for e in history if e.state in FINISHED} | set(finishing)
        started = {e.action for e in history if e.state in STARTED}
        specs = self.candidates(incident)
        counts = self.store.outcomes.counts(incident.pattern) if len(specs) > 1 else {}
        left = [c for c in ranked(specs, counts) if c.spec.name not in finished]
        resumed = [c for c in left if c.spec.name in started]
        return (resumed or left or [None])[0]
