"""``selfmend demo``: the real loop — worker and beat in this process — healing a simulated shop.

Faults are injected on a schedule after a fault-free stretch; the demo ends when every fault's
incident is closed (or at the deadline) with a table of when each was injected, detected, fixed
and verified. Demo time runs faster: pattern windows, and the history learned patterns need, are
divided by ``speed``; the shop recalls that history (a normal stretch) before it starts.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.demo.progress import Heartbeat, waiting_for
from selfmend.demo.simapp import FAULT_PATTERNS, SimulatedShop
from selfmend.demo.timeline import FaultRow, compressed, false_incidents, fault_rows
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.patterns import Pattern
from selfmend.store import Store

QUIET_SECONDS = 5.0  # the longest the demo stays silent


def run_demo(
    console: Console, *, faults: tuple[tuple[str, float], ...], speed: float, deadline: float
) -> list[FaultRow]:
    from workers import app, runtime
    from workers.embedded import embedded_worker
    from workers.logs import configure_logging

    configure_logging("WARNING", json=False)
    settings: Settings = app.selfmend_settings
    Store.from_url(settings.resolved_store_url, migrate=True).close()  # its own migrate job
    patterns = compressed(BUILTIN_PATTERNS, speed)
    system = runtime.build(app, patterns=patterns)
    runtime.install(system)
    shop = SimulatedShop(Client(settings, store=system.store, control_ttl=0.5))
    shop.recall(_learning(patterns))
    shop.client.flush()
    system.push.drain()  # stored before the first analyze pass learns from it
    console.print(
        "[bold]selfmend demo[/] — a [yellow]simulated[/] shop application, healed by a "
        "real Celery worker and beat running in this process."
    )
    console.print(
        f"store, broker and results under {settings.home} (no server needed); "
        f"demo time runs {speed:g}x faster: pattern windows are {speed:g}x shorter."
    )
    injected: dict[str, float] = {}
    started = time.time()
    schedule = list(faults)
    rows: list[FaultRow] = []
    heartbeat = Heartbeat(QUIET_SECONDS, started)
    with embedded_worker(app), Progress(console=console, transient=True) as progress:
        bar = progress.add_task("fault-free stretch", total=len(faults) * 2)
        while time.time() - started < deadline:
            shop.tick()
            elapsed = time.time() - started
            while schedule and elapsed >= schedule[0][1]:
                fault, _ = schedule.pop(0)
                shop.inject(fault)
                injected[fault] = time.time()
                console.print(f"  t={elapsed:5.1f}s  injected [red]{fault}[/]")
                heartbeat.said(time.time())
            rows = fault_rows(system.store, injected, FAULT_PATTERNS)
            closed = sum(row.done for row in rows)
            progress.update(
                bar,
                completed=len(injected) + closed,
                description=f"{len(injected)} faults injected, {closed} healed",
            )
            if not schedule and closed == len(faults):
                break
            if heartbeat.due(time.time()):
                console.print(
                    f"  t={elapsed:5.1f}s  [dim]{waiting_for(elapsed, schedule, rows)}[/]"
                )
            time.sleep(1.0)
        shop.client.close()
    first_fault = min(injected.values(), default=time.time())
    console.print(_table(rows))
    console.print(
        f"false incidents in the fault-free stretch: "
        f"[bold]{false_incidents(system.store, first_fault)}[/]"
    )
    return rows


def _learning(patterns: tuple[Pattern, ...]) -> float:
    """Seconds of normal history the faults' patterns need before their bands may alarm: the
    warm-up and the window it ends before, with a margin for windows too sparse to count."""
    chosen = [p for p in patterns if p.name in FAULT_PATTERNS.values()]
    needs = [
        1.2 * (c.learn.warm_up + c.window)
        for pattern in chosen
        for c in pattern.reads()
        if c.learn is not None
    ]
    return max(needs, default=0.0)


def _table(rows: list[FaultRow]) -> Table:
    table = Table(title="faults and what selfmend did (seconds after injection)")
    table.add_column("fault", no_wrap=True)
    for step in ("detected", "fixed", "closed"):
        table.add_column(step, justify="right", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("changed")
    for row in rows:
        table.add_row(
            row.fault,
            _after(row.injected_at, row.detected_at),
            _after(row.injected_at, row.fixed_at),
            _after(row.injected_at, row.closed_at),
            row.outcome,
            row.changed,
        )
    return table


def _after(start: float, moment: float | None) -> str:
    return "-" if moment is None else f"+{moment - start:.1f}s"
