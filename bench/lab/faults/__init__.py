"""The lab's faults: each breaks one real part, records what it broke, and undoes itself fully.

A fault persists until its ``deadline`` (seconds) unless selfmend fixes it sooner, so "the
objective recovered because of the fix" is a question the run can answer; the run undoes every
fault at its end, a fault selfmend already fixed included (``undo`` tolerates that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import Celery

from bench.lab.dependency import Dependency
from bench.lab.env import LabEnv
from bench.lab.processes import Child


@dataclass
class FaultContext:
    """What a fault may act on: the lab's servers and the shop's processes."""

    env: LabEnv
    dependency: Dependency
    shop_worker: Child

    def shop_celery(self) -> Celery:
        """A sender on the shop's broker, as another service or a cron would be."""
        return Celery("lab", broker=self.env.shop_broker_url)


class Fault(Protocol):
    name: str
    broke: str  # what it breaks, in the report
    deadline: float

    def inject(self) -> dict[str, Any]:
        """Break the part; returns details of what was done, kept with the ground truth."""

    def undo(self) -> None:
        """Put everything back as it was before ``inject``."""


@dataclass
class FaultRecord:
    """The ground truth of one injected fault."""

    name: str
    broke: str
    started: float
    ended: float
    detail: dict[str, Any] = field(default_factory=dict)


def kinds() -> list[type[Fault]]:
    """Every fault's class, in the order a full run injects them."""
    from bench.lab.faults.cache_flush import CacheFlush
    from bench.lab.faults.connections import ConnectionExhaustion
    from bench.lab.faults.dependency import SlowDependency
    from bench.lab.faults.idle_transactions import IdleTransactions
    from bench.lab.faults.index import DroppedIndex
    from bench.lab.faults.locks import LockContention
    from bench.lab.faults.long_query import LongQuery
    from bench.lab.faults.tasks import MemoryLeak, MisspelledTask, StuckTasks

    return [
        CacheFlush,
        IdleTransactions,
        SlowDependency,
        DroppedIndex,
        LockContention,
        StuckTasks,
        ConnectionExhaustion,
        LongQuery,
        MemoryLeak,
        MisspelledTask,
    ]


def catalogue(context: FaultContext) -> list[Fault]:
    """Every fault, in the order a full run injects them."""
    return [kind(context) for kind in kinds()]


def unknown(names: tuple[str, ...]) -> str | None:
    """Why ``names`` are not all faults' names, or None when they are."""
    known = [kind.name for kind in kinds()]
    missing = [name for name in names if name not in known]
    if not missing:
        return None
    return f"--faults: no fault named {', '.join(missing)}; the faults are {', '.join(known)}"


QUICK = ("cache_flush", "slow_dependency")
