"""The lab's score, as pure functions over records: what selfmend's store says happened
(incidents, applied actions, verdicts), what the lab did (each fault's ground truth) and what
the shop's users saw (every request). ``run.py`` reads the records; nothing here does I/O.

Per fault: detected (an incident opened between its start and its end plus a grace, or the next
fault's start if that comes first), time to
detect, the actions applied, verified (a ``fixed`` verdict, given before the lab undid the
fault, on a fix applied before it), time to the verified fix, whether the objective broke and
whether it recovered because of the fix: a fix applied before the undo, and the objective held
over the last stretch before the undo, after the fix. Healed is verified and recovered.
Incidents opened outside every fault's window are false, counted per hour of fault-free running.

An incident in a fault's window counts for that fault whatever its pattern: the report lists
each one's pattern, so a reader can tell a real detection from a coincidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median

GRACE_SECONDS = 60.0  # an incident this soon after an undo still belongs to its fault
BUCKET_SECONDS = 10.0
TAIL_SECONDS = 20.0  # the stretch before the undo the objective must hold over
MIN_REQUESTS = 5  # a bucket with fewer is not judged
WHY = ("failed", "rolled_back", "uncredited")  # states a fix's report gives the reason of
REASON_CHARS = 200


@dataclass(frozen=True)
class Incident:
    id: int
    pattern: str
    target: str
    opened_at: float


@dataclass(frozen=True)
class Execution:
    incident_id: int
    action: str
    state: str
    created_at: float
    reason: str = ""


@dataclass(frozen=True)
class Verification:
    incident_id: int
    verdict: str
    created_at: float


@dataclass(frozen=True)
class FaultWindow:
    name: str
    started: float
    ended: float


@dataclass(frozen=True)
class Hit:
    """One request as the user saw it."""

    ts: float
    latency: float
    status: int  # 0: no answer

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


@dataclass(frozen=True)
class Objective:
    p95_seconds: float
    error_rate: float

    def holds(self, hits: Sequence[Hit]) -> bool:
        return p95(hits) <= self.p95_seconds and error_rate(hits) <= self.error_rate


@dataclass(frozen=True)
class FaultScore:
    name: str
    incidents: list[Incident] = field(default_factory=list)
    ttd: float | None = None
    actions: list[str] = field(default_factory=list)
    fixed_at: float | None = None  # first fix applied, epoch seconds
    ttf: float | None = None  # to the first verified fix
    broke: bool = False
    recovered: bool = False
    outcomes: list[str] = field(default_factory=list)  # "action: its last state", per execution
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (p95 s, error rate)

    @property
    def detected(self) -> bool:
        return bool(self.incidents)

    @property
    def verified(self) -> bool:
        return self.ttf is not None

    @property
    def healed(self) -> bool:
        return self.verified and self.recovered


def p95(hits: Sequence[Hit]) -> float:
    if not hits:
        return 0.0
    ordered = sorted(hit.latency for hit in hits)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def error_rate(hits: Sequence[Hit]) -> float:
    return sum(hit.failed for hit in hits) / len(hits) if hits else 0.0


def objective_from(baseline: Sequence[Hit]) -> Objective:
    """The service's objective, from its fault-free traffic: twice its usual p95 (at least
    50 ms over it) and twice its usual error rate (at least 2 %)."""
    usual = p95(baseline)
    return Objective(max(2 * usual, usual + 0.05), max(2 * error_rate(baseline), 0.02))


def between(hits: Iterable[Hit], start: float, end: float) -> list[Hit]:
    return [hit for hit in hits if start <= hit.ts < end]


def broken(hits: Sequence[Hit], objective: Objective, start: float, end: float) -> bool:
    """Whether any judged bucket in [start, end) missed the objective."""
    bucket = start
    while bucket < end:
        inside = between(hits, bucket, min(bucket + BUCKET_SECONDS, end))
        if len(inside) >= MIN_REQUESTS and not objective.holds(inside):
            return True
        bucket += BUCKET_SECONDS
    return False


def timeline(hits: Sequence[Hit], start: float, end: float) -> list[tuple[float, float]]:
    """What the users saw through the fault, bucket by bucket: (p95 seconds, error rate)."""
    buckets = []
    bucket = start
    while bucket < end:
        inside = between(hits, bucket, min(bucket + BUCKET_SECONDS, end))
        buckets.append((p95(inside), error_rate(inside)))
        bucket += BUCKET_SECONDS
    return buckets


def outcomes(executions: Sequence[Execution], ids: set[int]) -> list[str]:
    """Each of the fault's fixes with the state it ended in (applied, verified, uncredited,
    rolled_back...), in the order they were planned, with the reason of one that did not
    count: why a fix did or did not count."""
    last: dict[tuple[int, str], Execution] = {}
    for execution in sorted(executions, key=lambda e: e.created_at):
        if execution.incident_id in ids:
            last[(execution.incident_id, execution.action)] = execution
    return [
        f"#{incident} {action}: {e.state}"
        + (f" ({e.reason[:REASON_CHARS]})" if e.state in WHY else "")
        for (incident, action), e in last.items()
    ]


def in_window(ts: float, fault: FaultWindow) -> bool:
    return fault.started <= ts < fault.ended + GRACE_SECONDS


def owner(ts: float, faults: Sequence[FaultWindow]) -> FaultWindow | None:
    """The fault a moment belongs to: the latest started whose window holds it, so a grace
    that reaches into the next fault gives that fault's incidents to the next fault."""
    holding = [fault for fault in faults if in_window(ts, fault)]
    return max(holding, key=lambda fault: fault.started, default=None)


def attribute(
    incidents: Sequence[Incident], faults: Sequence[FaultWindow]
) -> dict[str, list[Incident]]:
    """Each fault's incidents by name, oldest first; incidents of no fault are left out."""
    owned: dict[str, list[Incident]] = {fault.name: [] for fault in faults}
    for incident in sorted(incidents, key=lambda incident: incident.opened_at):
        fault = owner(incident.opened_at, faults)
        if fault is not None:
            owned[fault.name].append(incident)
    return owned


def score_fault(
    fault: FaultWindow,
    mine: Sequence[Incident],
    executions: Sequence[Execution],
    verifications: Sequence[Verification],
    hits: Sequence[Hit],
    objective: Objective,
) -> FaultScore:
    """``mine``: the fault's incidents (``attribute``), oldest first."""
    ids = {incident.id for incident in mine}
    applied = sorted(
        (e for e in executions if e.incident_id in ids and e.state == "applied"),
        key=lambda e: e.created_at,
    )
    fixed_at = next((e.created_at for e in applied if e.created_at < fault.ended), None)
    verified_at = None
    if fixed_at is not None:
        # Before the undo: a verdict after it judges the lab putting things back, not the fix.
        verified_at = min(
            (
                v.created_at
                for v in verifications
                if v.incident_id in ids and v.verdict == "fixed" and v.created_at < fault.ended
            ),
            default=None,
        )
    recovered = False
    if fixed_at is not None:
        tail = between(hits, max(fixed_at, fault.ended - TAIL_SECONDS), fault.ended)
        recovered = len(tail) >= MIN_REQUESTS and objective.holds(tail)
    return FaultScore(
        name=fault.name,
        incidents=list(mine),
        ttd=mine[0].opened_at - fault.started if mine else None,
        actions=[e.action for e in applied],
        fixed_at=fixed_at,
        ttf=None if verified_at is None else verified_at - fault.started,
        broke=broken(hits, objective, fault.started, fixed_at or fault.ended),
        recovered=recovered,
        outcomes=outcomes(executions, ids),
        timeline=timeline(hits, fault.started, fault.ended),
    )


def false_incidents_per_hour(
    incidents: Sequence[Incident], faults: Sequence[FaultWindow], run_start: float, run_end: float
) -> float:
    """Incidents opened outside every fault's window (and its grace), per fault-free hour."""
    covered = sum(
        max(0.0, min(f.ended + GRACE_SECONDS, run_end) - max(f.started, run_start)) for f in faults
    )
    free_hours = max(run_end - run_start - covered, 0.0) / 3600
    false = [
        i
        for i in incidents
        if run_start <= i.opened_at < run_end and owner(i.opened_at, faults) is None
    ]
    return len(false) / free_hours if free_hours else 0.0


def summary_line(scores: Sequence[FaultScore], false_per_hour: float) -> str:
    ttds = [s.ttd for s in scores if s.ttd is not None]
    ttfs = [s.ttf for s in scores if s.ttf is not None]
    return (
        f"faults={len(scores)} detected={sum(s.detected for s in scores)} "
        f"healed={sum(s.healed for s in scores)} "
        f"false_incidents_per_hour={false_per_hour:.2f} "
        f"median_ttd_s={_median(ttds)} median_ttf_s={_median(ttfs)}"
    )


def _median(values: list[float]) -> str:
    return f"{median(values):.1f}" if values else "nan"


def report(score: FaultScore) -> str:
    """One fault's lines in the run's output."""
    head = (
        f"{score.name:22} detected={'yes' if score.detected else 'no':3}"
        f" ttd={_seconds(score.ttd):5}"
        f" verified={'yes' if score.verified else 'no':3} ttf={_seconds(score.ttf):5}"
        f" broke={'yes' if score.broke else 'no':3}"
        f" recovered_by_fix={'yes' if score.recovered else 'no':3}"
        f" healed={'yes' if score.healed else 'no'}"
    )
    incidents = ", ".join(f"#{i.id} {i.pattern}" for i in score.incidents) or "none"
    actions = ", ".join(score.outcomes) or "none"
    seen = " ".join(f"{p95 * 1000:.0f}/{errors:.0%}" for p95, errors in score.timeline)
    return (
        f"{head}\n    incidents: {incidents}\n    fixes (last state): {actions}"
        f"\n    users saw, p95 ms/errors per {BUCKET_SECONDS:.0f} s: {seen}"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"
