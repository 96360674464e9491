"""Whether a recovery is the fix's doing: what the verifier checks before it credits a fix.

A series back in band after a fix proves little by itself: the cache refills with traffic, a
blocked query finishes, a burst passes. Counting such recoveries as fixes teaches the fix choice
the wrong lesson and keeps changes that did nothing. A fix is not credited when:

- its action reported that it changed nothing (``changed: false`` in its result: a warm that
  found every key back already, a session end that found no session left);
- the fault was gone before it: the pattern no longer held over the samples taken between the
  incident's opening and the apply, across half the condition's window (the evidence detection
  itself asks for);
- the series comes back as fast on its own: at least ``natural_minimum`` earlier incidents of
  the same pattern on the same series cleared with no fix applied, and their median time to
  clear is no longer than this one took to the start of the hold window.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from selfmend.models import Verdict
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident

Points = list[tuple[float, float]]
InBand = Callable[[Incident, Points], tuple[Verdict, dict[str, Any]]]


@dataclass(frozen=True)
class Uncredited:
    """Why a recovery is not the fix's doing, with what showed it."""

    reason: str
    evidence: dict[str, Any]

    def after(self, judged: dict[str, Any], *, back_in_band: bool) -> dict[str, Any]:
        """The verdict's record: what the hold window showed, and why it is not credited."""
        return {
            **judged,
            "reason": self.reason,
            "credit": self.evidence,
            "back_in_band": back_in_band,
        }


class Credit:
    def __init__(
        self,
        store: Store,
        *,
        settle_seconds: float,
        min_samples: int,
        natural_minimum: int = 3,
        natural_lookback_seconds: float = 7 * 86400,
    ) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self.min_samples = max(2, min_samples)
        self.natural_minimum = natural_minimum
        self.natural_lookback_seconds = natural_lookback_seconds

    def uncredited(
        self,
        incident: Incident,
        applied: Execution,
        verdict: Verdict,
        window: float,
        in_band: InBand,
    ) -> Uncredited | None:
        """Why the fix gets no credit, or None: it changed nothing, or its series is back in
        band for reasons of its own (only a fixed verdict is questioned on that)."""
        nothing = self.changed_nothing(applied)
        if nothing is not None or verdict is not Verdict.FIXED:
            return nothing
        return self.recovering_before(incident, applied, window, in_band) or self.as_without_a_fix(
            incident, applied
        )

    @staticmethod
    def changed_nothing(applied: Execution) -> Uncredited | None:
        result = applied.result or {}
        if result.get("changed") is not False:
            return None
        return Uncredited(
            f"{applied.action} reported it changed nothing, so a recovery is not its doing",
            {"result": result},
        )

    def recovering_before(
        self,
        incident: Incident,
        applied: Execution,
        window: float,
        in_band: InBand,
        connection: Connection | None = None,
    ) -> Uncredited | None:
        """Uncredited if the samples between the opening and the apply, over the last half
        window before it, were already back in band."""
        start = max(incident.opened_at, applied.created_at - window / 2)
        points = self.store.samples.window(
            incident.series_key or "", start, applied.created_at, connection
        )
        if len(points) < self.min_samples or points[-1][0] - points[0][0] < window / 4:
            return None  # applied soon after the opening: nothing to say it was recovering
        verdict, judged = in_band(incident, points)
        if verdict is not Verdict.FIXED:
            return None
        return Uncredited(
            "the series was back in band before the fix was applied",
            {"before_fix": judged, "from": start, "to": applied.created_at},
        )

    def as_without_a_fix(self, incident: Incident, applied: Execution) -> Uncredited | None:
        """Uncredited if the series usually clears by itself at least as fast."""
        since = applied.created_at - self.natural_lookback_seconds
        natural = self.store.incidents.natural_recoveries(incident.pattern, incident.target, since)
        if len(natural) < self.natural_minimum:
            return None
        usual = statistics.median(natural)
        took = applied.created_at + self.settle_seconds - incident.opened_at
        if usual > took:
            return None
        return Uncredited(
            f"the series recovered in {took:.0f} s; with no fix it recovers in {usual:.0f} s "
            f"(median of {len(natural)} incidents)",
            {"took_seconds": took, "natural_median_seconds": usual, "natural": len(natural)},
        )
