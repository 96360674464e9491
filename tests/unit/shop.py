"""The shop the remediation tests heal on SQLite: its ``orders_stuck`` pattern (drain, else
restart), the samples that make it stuck or well, and the actions a user registers beside the
built-in ones."""

from __future__ import annotations

import time
import tomllib
from typing import Any

from selfmend.detect.pattern_file import parse_patterns
from selfmend.errors import ActionError
from selfmend.models import Risk, Sample
from selfmend.remedy.base import Plan
from selfmend.system import System

PATTERNS = parse_patterns(
    tomllib.loads("""
[[patterns]]
name = "orders_stuck"
severity = "high"
condition = { series = "shop.orders_pending", aggregate = "min", window = 10, op = ">", \
threshold = 10 }
actions = [
    { name = "set_control", params = { key = "shop.drain", value = true } },
    { name = "restart_shop" },
]
why = "drain, else restart: orders wait."
"""),
    "test patterns",
)


class RestartShop:
    """A user's action: flips a live setting the shop watches, and back. ``faults`` lists, per
    rollback call, what that call raises: SystemExit takes its worker down (as an out-of-memory
    kill would), None lets it succeed."""

    name = "restart_shop"
    risk = Risk.LOW
    reversible = True

    def __init__(
        self, store, *, plannable: bool = True, faults: list[BaseException | None] | None = None
    ) -> None:
        self.controls = store.controls
        self.plannable = plannable
        self.faults = faults or []
        self.rollbacks = 0

    def plan(self, params: dict[str, Any]) -> Plan:
        if not self.plannable:
            raise ActionError("restart_shop: the shop's supervisor does not answer")
        return Plan(self.name, "shop", params, {}, "restart the shop")

    def apply(self, plan: Plan) -> dict[str, Any]:
        self.controls.set("shop.restarted", True, "test")
        return {"changed": True}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        self.rollbacks += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            raise fault
        changed = self.controls.get("shop.restarted") is not None
        self.controls.delete("shop.restarted", "test")  # a second rollback changes nothing
        return {"changed": changed}


class DiesApplying:
    """An action whose apply takes its worker down, as an out-of-memory kill would: its claim
    stays in flight until the broker delivers the message again."""

    name = "dies_applying"
    risk = Risk.LOW
    reversible = True

    def __init__(self, store) -> None:
        pass

    def plan(self, params):
        return Plan(self.name, "host", params, {}, "something heavy")

    def apply(self, plan):
        raise SystemExit("killed")

    def rollback(self, plan):
        return {"changed": False}


def pending(system: System, value: float, start: float, seconds: int = 10) -> None:
    """The shop's pending orders at ``value``, one sample a second from ``start``."""
    system.store.samples.insert(
        [
            Sample(series="shop.orders_pending", ts=start + i, value=value)
            for i in range(seconds + 1)
        ]
    )


def fault(system: System, now: float | None = None) -> int:
    """Orders stuck for the pattern's window; the incident analyze opens."""
    now = time.time() if now is None else now
    pending(system, 30.0, now - 10)
    (incident_id,) = system.analyzer.run(now).new_incidents
    return incident_id


def verify_with(system: System, remediation, value: float):
    """Verify ``remediation`` once its hold window saw the shop at ``value``."""
    pending(system, value, remediation.applied_at + 1, seconds=5)
    return system.verifier.verify(remediation, now=remediation.applied_at + 10)
