"""The safety gate: decides, from facts the executor gathers, whether an action may run now.

A pure function of its inputs, so every rule is testable alone and every decision carries the
reason that goes into the audit log. The cooldown read here comes before the claim, unlocked;
the claim applies the same rule again under its lock (``selfmend/store/claims.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from selfmend.config import Mode
from selfmend.models import Risk
from selfmend.store.claims import cooldown_hold


class Verdict(StrEnum):
    APPLY = "apply"
    DRY_RUN = "dry_run"
    SKIP = "skip"
    AWAIT_APPROVAL = "await_approval"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class GateFacts:
    mode: Mode
    action: str
    target: str
    risk: Risk
    kill_switch_on: bool
    approved: bool
    last_applied_at: float | None
    cooldown_seconds: float
    now: float


def decide(facts: GateFacts) -> Decision:
    """Rules in order of precedence; the first that speaks decides."""
    if facts.kill_switch_on:
        return Decision(Verdict.SKIP, f"kill switch is on for {facts.action}")
    if facts.mode == "observe":
        return Decision(Verdict.SKIP, "mode is observe: detect only")
    cooling = cooldown_hold(
        facts.action, facts.target, facts.last_applied_at, facts.cooldown_seconds, facts.now
    )
    if cooling is not None:
        return Decision(Verdict.SKIP, cooling)
    if facts.mode == "dry_run":
        return Decision(Verdict.DRY_RUN, "mode is dry_run: planned, not applied")
    if facts.risk.needs_approval and not facts.approved:
        return Decision(Verdict.AWAIT_APPROVAL, f"{facts.risk} risk needs a person's approval")
    return Decision(
        Verdict.APPLY, "approved by a person" if facts.approved else f"{facts.risk} risk, mode auto"
    )
