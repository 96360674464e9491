"""What the demo is waiting for, said in a line every few seconds through its quiet stretches.

A pattern fires only when its condition held for its whole window, and a fix is judged after a
settle delay and a hold window, so the demo has stretches of seconds where nothing visible
happens; a newcomer watching a silent terminal cannot tell waiting from hanging.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfmend.demo.timeline import FaultRow


def waiting_for(
    elapsed: float, schedule: Sequence[tuple[str, float]], rows: Sequence[FaultRow]
) -> str:
    """One line: the first fault still on its way through the loop, else the next injection."""
    for row in rows:
        if row.detected_at is None:
            return f"waiting for analyze to detect {row.fault} (its pattern's window must fill)"
        if row.fixed_at is None and not row.done:
            return f"{row.fault} detected: waiting for its fix to be applied"
        if not row.done:
            return f"{row.fault} fixed: verifying it on fresh samples (settle, then hold window)"
    if schedule:
        fault, at = schedule[0]
        stretch = "fault-free stretch: watching for false alarms; " if not rows else ""
        return f"{stretch}next fault, {fault}, at t={at:g}s (in {max(at - elapsed, 0):.0f}s)"
    return "every fault healed"


class Heartbeat:
    """Says a line when ``every`` seconds passed since the demo last said anything."""

    def __init__(self, every: float, now: float) -> None:
        self.every = every
        self.last = now

    def said(self, now: float) -> None:
        """Something else was printed: the quiet stretch starts again."""
        self.last = now

    def due(self, now: float) -> bool:
        if now - self.last < self.every:
            return False
        self.last = now
        return True
