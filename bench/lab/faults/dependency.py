"""The outside dependency turns slow and failing: 1 s, then a 503, on every call."""

from __future__ import annotations

from bench.lab.faults import FaultContext


class SlowDependency:
    name = "slow_dependency"
    broke = "recommendations (dependency answers 503 after 1 s)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.dependency = context.dependency

    def inject(self) -> dict:
        self.dependency.failing.set()
        return {}

    def undo(self) -> None:
        self.dependency.failing.clear()
