"""Scale-out of the analyze stage: one worker process against two, on the same data, one run.

    python -m bench.scale [--series 20000] [--points 60] [--rounds 2] [--postgres URL]
                          [--no-sqlite]

``--series`` series (noise, so no incident opens), their detectors trained and saved on 240
points first. Then, in ``--rounds`` rounds, each configuration in turn, one after the other so
load from elsewhere on the machine falls on both:

- **1 worker**: one process runs ``System.analyze(0, 1)``;
- **2 workers**: two processes run ``System.analyze(0, 2)`` and ``System.analyze(1, 2)`` at
  once; the pass takes until the slower is done.

Each configuration gets ``--points`` new points per series and a **cold** pass (its processes'
detectors are stale: the other configuration moved the cursors on, so every detector is
restored from the store, as when a shard lands on another process), then as many again and a
**warm** pass (each process kept the detectors it left). The worker processes live through
the whole run, each with its own ``System``, as Celery's pool processes would.

Per configuration: the passes' seconds, the speed-up (1 worker's seconds over 2 workers' in
the same round; target at least 1.8 on two cores), the CPU of the workers and of the database
server (PostgreSQL's processes, read from ``/proc``), and where each worker's time went.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.engine import make_url

from selfmend.config import Settings
from selfmend.detect.choice import choice_for
from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.tables import series as series_table
from selfmend.system import System
from tests import resources

HISTORY = 240
STEP = 15.0
CONFIGURATIONS = {"1 worker": 1, "2 workers": 2}
ROWS_PER_TRANSACTION = 200_000
# Where a worker's pass goes: the store's reads and writes and the shard-0 extras by name, the
# rest (restoring and scoring the detectors, building the updates) is detection.
TIMED_STORE = ("cursors", "new_points", "detector_states", "save_analysis")
TIMED_ANALYZER = ("_recent", "_upkeep", "_raise", "_judge_services")


def settings_for(store_url: str, folder: Path) -> Settings:
    return Settings(home=folder, store_url=store_url, mode="observe")


def fill(system: System, count: int, start: float, points: int, seed: int) -> None:
    """``points`` samples of each of ``count`` series from ``start``, every 15 s: Gaussian
    noise, so every anomaly is false and no incident opens. Series are created once through
    ``insert``; the points go in through the raw batch path."""
    samples = system.store.samples
    ids = series_ids(system)
    if len(ids) < count:
        samples.insert(
            [Sample(series=f"bench.metric_{i}", ts=start - STEP, value=100.0) for i in range(count)]
        )
        ids = series_ids(system)
    values = np.random.default_rng(seed).normal(100, 5, (count, points))
    timestamps = start + STEP * np.arange(points)
    series_ids_ = np.repeat(np.array(ids[:count]), points)
    rows = list(
        zip(
            series_ids_.tolist(),
            np.tile(timestamps, count).tolist(),
            values.ravel().tolist(),
            strict=True,
        )
    )
    for first in range(0, len(rows), ROWS_PER_TRANSACTION):
        with system.store.engine.begin() as connection:
            samples.insert_rows(rows[first : first + ROWS_PER_TRANSACTION], connection)


def series_ids(system: System) -> list[int]:
    with system.store.engine.connect() as connection:
        query = select(series_table.c.id).order_by(series_table.c.id)
        return list(connection.execute(query).scalars())


# -- the worker processes ---------------------------------------------------------------------


@dataclass
class PassTimes:
    """One worker's pass: wall and CPU seconds, and seconds by part (see ``TIMED_STORE``)."""

    seconds: float
    cpu: float
    parts: dict[str, float]
    series: int
    points: int


def _timed(parts: dict[str, float], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            parts[name] += time.perf_counter() - began

    return timed


def _instrument(system: System) -> dict[str, float]:
    """Time the parts of the analyze pass on this system's objects (not their classes)."""
    parts: dict[str, float] = defaultdict(float)
    for name in TIMED_STORE:
        samples = system.store.samples
        setattr(samples, name, _timed(parts, name, getattr(samples, name)))
    analyzer = system.analyzer
    for name in TIMED_ANALYZER:
        setattr(analyzer, name, _timed(parts, name.strip("_"), getattr(analyzer, name)))
    backlog = system.backlog
    backlog.sweep = _timed(parts, "backlog_sweep", backlog.sweep)  # type: ignore[method-assign]
    return parts


def serve(settings: Settings, commands: Connection) -> None:
    """A worker process: a ``System`` of its own; each command is one analyze pass."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    system = System.from_settings(settings)
    parts = _instrument(system)
    # The detectors' compiled kernels load on first use: once per process, not per pass.
    detector = choice_for("bench.metric_0", system.analyzer.settings.detectors).build()
    detector.score_many(STEP * np.arange(100.0), np.full(100, 100.0))
    commands.send("ready")
    while (command := commands.recv()) is not None:
        shard, shards, now = command
        parts.clear()
        began, cpu = time.perf_counter(), time.process_time()
        report = system.analyze(shard=shard, shards=shards, now=now)
        seconds = time.perf_counter() - began
        commands.send(
            PassTimes(seconds, time.process_time() - cpu, dict(parts), report["series"],
                      report["points"])
        )  # fmt: skip
    system.store.engine.dispose()


@dataclass
class Pool:
    """``size`` worker processes, shard ``i`` always to process ``i`` (their detectors stay
    warm between passes, as with one queue per shard)."""

    size: int
    settings: Settings
    pipes: list[Connection] = field(default_factory=list)
    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no engine or connection shared
        for _ in range(self.size):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(self.settings, theirs), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a bench worker did not start")

    def analyze(self, now: float) -> tuple[float, list[PassTimes]]:
        """Seconds from sending the pass to every shard until the last is done."""
        began = time.perf_counter()
        for shard, pipe in enumerate(self.pipes):
            pipe.send((shard, self.size, now))
        times = [pipe.recv() for pipe in self.pipes]
        return time.perf_counter() - began, times

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(60)


# -- what two processes get from this machine ----------------------------------------------


def _spin(iterations: int) -> float:
    began = time.perf_counter()
    total = 0
    for number in range(iterations):
        total += number * number
    return time.perf_counter() - began


def machine_ceiling(iterations: int = 5_000_000, rounds: int = 3) -> float:
    """How much faster two processes do two equal pieces of pure Python work than one process
    does one of them twice: the most any two-worker figure can reach here (2.0 on two idle,
    independent cores; less when the cores are shared, or hyperthreads of one)."""
    context = multiprocessing.get_context("spawn")
    ratios = []
    with context.Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # both processes started
        for _ in range(rounds):
            one = _spin(iterations)
            began = time.perf_counter()
            pool.map(_spin, [iterations, iterations])
            ratios.append(2 * one / (time.perf_counter() - began))
    return median(ratios)


# -- the database server's CPU ------------------------------------------------------------


def server_cpu(database: str | None) -> float:
    """CPU seconds so far of the PostgreSQL processes that serve ``database`` (its backends and
    autovacuum workers, whose titles name it; read from ``/proc``): other databases' clients
    on the machine are not counted, nor the cluster's shared WAL writer and checkpointer."""
    if database is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for process in Path("/proc").glob("[0-9]*"):
        try:
            title = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not title.startswith("postgres") or f" {database} " not in title:
                continue
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        used += (int(fields[11]) + int(fields[12])) / tick
    return used


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Measured:
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    worker_cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    parts: dict[str, list[list[PassTimes]]] = field(default_factory=lambda: defaultdict(list))


def run_store(store_url: str, count: int, points: int, rounds: int) -> Measured:
    database = make_url(store_url).database if store_url.startswith("postgres") else None
    folder = resources.temp_folder("bench-scale")
    settings = settings_for(store_url, folder)
    system = System.from_settings(settings)
    passes = rounds * len(CONFIGURATIONS) * 2
    start = time.time() - (HISTORY + passes * points) * STEP
    fill(system, count, start, HISTORY, seed=1)
    clock = start + HISTORY * STEP
    system.analyze(now=clock)  # every series has a saved detector
    pools = {name: Pool(size, settings) for name, size in CONFIGURATIONS.items()}
    for pool in pools.values():
        pool.start()
    measured = Measured()
    try:
        for _ in range(rounds):
            for name, pool in pools.items():
                for kind in ("cold", "warm"):
                    fill(system, count, clock, points, seed=int(clock) % 2**31)
                    clock += points * STEP
                    server = server_cpu(database)
                    seconds, times = pool.analyze(now=clock)
                    served = sum(t.series for t in times)
                    if served != count or sum(t.points for t in times) != count * points:
                        raise RuntimeError(f"{name} analyzed {served} series, not {count}")
                    measured.seconds[f"{name} {kind}"].append(seconds)
                    measured.worker_cpu[f"{name} {kind}"].append(sum(t.cpu for t in times))
                    measured.server_cpu[f"{name} {kind}"].append(server_cpu(database) - server)
                    measured.parts[f"{name} {kind}"].append(times)
    finally:
        for pool in pools.values():
            pool.stop()
        system.store.engine.dispose()
    return measured


def report(store: str, measured: Measured, count: int, points: int) -> list[str]:
    lines = []
    for kind in ("warm", "cold"):
        one, two = measured.seconds[f"1 worker {kind}"], measured.seconds[f"2 workers {kind}"]
        ratios = sorted(a / b for a, b in zip(one, two, strict=True))
        lines.append(
            f"scale, {store}, {kind}: 1 worker {median(one):.2f} s, 2 workers {median(two):.2f} s, "
            f"speed-up {median(ratios):.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}; "
            f"target >= 1.8x)"
        )
    lines.append(
        f"  {count:,} series x {points} new points a pass, {count * points / 1e6:.1f} M points"
    )
    for name, values in measured.seconds.items():
        wall = median(values)
        workers = median(measured.worker_cpu[name])
        server = median(measured.server_cpu[name])
        lines.append(
            f"  {name}: {wall:.2f} s; CPU: workers {workers:.2f} s, database server "
            f"{server:.2f} s, together {(workers + server) / wall:.2f} cores busy; per series "
            f"{1e6 * (workers + server) / count:.0f} us of CPU"
        )
        lines.append(f"    where each worker's time went: {parts_line(measured.parts[name])}")
    return lines


def parts_line(passes: list[list[PassTimes]]) -> str:
    """Per worker, the median seconds of each part over the passes."""
    shown = []
    for worker in range(len(passes[0])):
        times = [each[worker] for each in passes]
        names = {name for t in times for name in t.parts}
        part = {name: median(t.parts.get(name, 0.0) for t in times) for name in names}
        total = median(t.seconds for t in times)
        part["detect and the rest"] = total - sum(part.values())
        ordered = sorted(part.items(), key=lambda item: -item[1])
        shown.append(
            f"[shard {worker}: {total:.2f} s = "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in ordered if seconds >= 0.005)
            + "]"
        )
    return " ".join(shown)


def fresh_postgres(server: str) -> str:
    """A new store database of this run (``tests.resources``, dropped at exit), migrated."""
    url = resources.fresh_database("bench_scale", server)
    Store.from_url(url, migrate=True).close()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--points", type=int, default=60, help="new points per series a pass")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", help="e.g. postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )  # fmt: skip
    print(
        f"machine: {os.cpu_count()} cores, {model}, Python {platform.python_version()}; "
        f"{args.rounds} rounds"
    )
    print(
        f"ceiling: two processes of pure Python work {machine_ceiling():.2f}x one process, "
        "on this machine now"
    )
    sqlite = f"sqlite:///{resources.temp_folder('bench-scale')}/scale.db"
    stores = {} if args.no_sqlite else {"sqlite": sqlite}
    if args.postgres:
        stores["postgresql"] = fresh_postgres(args.postgres)
    for store, url in stores.items():
        measured = run_store(url, args.series, args.points, args.rounds)
        for line in report(store, measured, args.series, args.points):
            print(line, flush=True)


if __name__ == "__main__":
    main()
