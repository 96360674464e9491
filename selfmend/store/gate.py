"""What the safety gate reads for an action on a target: the kill switches that hold it and
when it last ran there. Every remediation reads both, so they are one statement: one pooled
connection and, on PostgreSQL, one round trip rather than two."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from selfmend.store.controls import ACTION_SWITCHES_ON
from selfmend.store.engine import reads
from selfmend.store.executions import LAST_APPLIED

_READING = select(ACTION_SWITCHES_ON.scalar_subquery(), LAST_APPLIED.scalar_subquery())


@dataclass(frozen=True)
class GateReading:
    kill_switch_on: bool
    last_applied_at: float | None


class GateReads:
    def __init__(self, engine: Engine) -> None:
        self.reads = reads(engine)

    def read(self, action: str, target: str) -> GateReading:
        with self.reads.connect() as connection:
            switches_on, last_applied_at = connection.execute(
                _READING, {"action": action, "target": target}
            ).one()
        return GateReading(switches_on > 0, last_applied_at)
