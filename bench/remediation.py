"""Remediation throughput on a real worker, against a bare Celery chain on the same broker.

    python -m bench.remediation [--incidents 300] [--rounds 3] [--concurrency 4]
                                [--pool threads|prefork] [--postgres URL] [--redis URL]

One ``celery -A workers worker`` process (a thread pool by default) consumes the remediate
and verify queues and the baseline's queue. Four figures, each over ``--incidents`` sent at
once, in ``--rounds`` rounds of the four one after the other (load from elsewhere on the
machine then falls on all of a round; the overhead is the median of the rounds' ratios). Each
phase's clock starts at its first send and stops at its last result: the worker consumes while
the bench is still sending, so sending belongs inside the clock, or the rates would exceed what
the CPU allows.

- **bare chains/s**: ``bench.noop | bench.noop``, the cost of Celery itself;
- **shaped chains/s**: tasks of remediate's and verify's shape with no store work
  (``bench/noop_tasks.py``): how much of the overhead is Celery's, not the store's;
- **remediate → verify chains/s**: each incident's fix planned, gated, claimed, applied
  (``set_control``), then verified on fresh samples (a feeder writes one every 20 ms) with no
  settle delay and a 200 ms hold window; the ratio to the bare chains is the loop's overhead;
- **incidents remediated/s**: remediate alone.

The last lines check the figures against the machine: each phase's rate times the worker's CPU
per item (from ``/proc``, a prefork pool's children included) is the cores the worker kept
busy, and with the bench's own CPU (sending, polling results, the feeder) it must fit the
machine's cores; a phase that does not fit is flagged, as its clock cannot be right.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from statistics import median
from typing import Any

import redis
from celery import Signature, chain

from selfmend.config import Settings
from selfmend.models import Sample, Severity
from selfmend.store import Store
from selfmend.system import System
from tests import resources
from tests.app_reads import app_reads_what_its_fixes_change

REPO = Path(__file__).resolve().parents[1]
SERIES = "bench.errors"
WORKER_QUEUES = "selfmend.remediate,selfmend.verify,selfmend.collect"
RUN_LOCK = "bench.remediation.running"


def patterns_file(folder: Path, count: int) -> Path:
    """One pattern per incident over the same series, each fixing its own live setting."""
    lines = []
    for index in range(count):
        lines += [
            "[[patterns]]",
            f'name = "bench_{index}"',
            'severity = "medium"',
            f'condition = {{ series = "{SERIES}", aggregate = "max", window = 60, op = ">", '
            "threshold = 1 }",
            f'action = {{ name = "set_control", params = {{ key = "bench.flag_{index}", '
            "value = true } }",
            'why = "bench"',
            "",
        ]
    path = folder / "patterns.toml"
    path.write_text("\n".join(lines))
    return path


def settings_for(folder: Path, store_url: str, redis_url: str, count: int) -> Settings:
    """The bench's settings: its broker and results on this run's Redis DBs (``tests.resources``,
    ``SELFMEND_TEST_SLOT``), no delay, caps or cooldown in the way."""
    return Settings(
        home=folder,
        store_url=store_url,
        broker_url=f"{redis_url}/{resources.redis_db('broker')}",
        result_backend=f"{redis_url}/{resources.redis_db('results')}",
        mode="auto",
        cooldown_seconds=0,
        settle_seconds=0,
        verify_window_seconds=0.2,
        verify_min_samples=1,
        max_concurrent_remediations=100_000,
        max_actions_per_hour=1_000_000,
        patterns_file=patterns_file(folder, count),
    )


def start_worker(settings: Settings, concurrency: int, pool: str) -> subprocess.Popen:
    values = settings.model_dump(exclude_defaults=True)  # scalars only: what the bench sets
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        **{f"SELFMEND_{key.upper()}": str(value) for key, value in values.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", f"--pool={pool}",
         f"--concurrency={concurrency}", "-I", "bench.noop_tasks",
         f"--queues={WORKER_QUEUES}", "--without-mingle", "--without-gossip",
         "--loglevel=WARNING", "--hostname=bench@localhost"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def open_incidents(system: System, count: int, first: int) -> list[int]:
    """Incidents of patterns ``first`` to ``first + count``: each pattern once in a run, so no
    incident counts as a reopened one (and flapping)."""
    return [
        system.store.incidents.open(
            pattern=f"bench_{index}",
            target=SERIES,
            severity=Severity.MEDIUM,
            series_key=SERIES,
            root_cause="bench",
            evidence={},
        )[0].id
        for index in range(first, first + count)
    ]


def wait_all(results: list, timeout: float = 600) -> None:
    """Return once every result is ready, read from the result backend in the order sent.

    Not ``result.get()``: on the Redis backend a result whose notification was published before
    the waiting subscription took it (it happened about once in a dozen runs, to the bare noop
    chains as much as to selfmend's) waited forever; the stored state is always there."""
    deadline = time.perf_counter() + timeout
    for result in results:
        while not result.ready():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"task {result.id} not done after {timeout:g} s")
            time.sleep(0.002)


def cpu_seconds(pid: int) -> float:
    """CPU time so far of process ``pid`` and its live descendants (a prefork pool's children),
    read from ``/proc``: Linux only, 0 elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        process = int(stat.parent.name)
        parents[process] = int(fields[1])
        used[process] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree, grown = tree | more, bool(more)
    return sum(used.get(process, 0.0) for process in tree)


def feed(system: System, stop: threading.Event) -> None:
    """Fresh, healthy samples every 20 ms (ten in each 200 ms hold window), what verification
    judges the fixes on: far more often than an application reports, few enough that the
    feeder is not a second writer always waiting on SQLite."""
    while not stop.wait(0.02):
        system.store.samples.insert([Sample(series=SERIES, ts=time.time(), value=0.0)])


def fresh_postgres(server: str) -> str:
    """A new store database of this run (``tests.resources``, dropped at exit), migrated: the
    worker only waits for the schema."""
    url = resources.fresh_database("bench_remediation", server)
    Store.from_url(url, migrate=True).close()
    return url


def run_phase(
    worker: int, signature: Callable[[Any], Signature], items: Iterable[Any]
) -> tuple[float, float, float]:
    """Seconds from the first send of ``signature(item)`` to the last item done, the
    ``worker``'s CPU seconds in that time, and this process's (sending and polling; the feeder
    thread's too)."""
    signatures = [signature(item) for item in items]  # built before the clock: not sending
    used, own = cpu_seconds(worker), time.process_time()
    began = time.perf_counter()
    wait_all([each.apply_async() for each in signatures])
    seconds = time.perf_counter() - began
    return seconds, cpu_seconds(worker) - used, time.process_time() - own


def measure(system: System, count: int, rounds: int, worker: int) -> list[dict[str, float]]:
    """Per round, seconds for ``count`` bare chains, shaped chains, remediate | verify chains
    and remediations, one after the other (load from elsewhere falls on all of a round), the
    ``worker`` process's CPU seconds for each (``cpu_<phase>``) and this process's
    (``bench_<phase>``)."""
    from bench.noop_tasks import noop, shaped_remediate, shaped_verify
    from tasks.remediate import remediate, remediation_chain

    baseline = noop.s().set(queue="selfmend.collect")
    countdown = system.verifier.first_check_after
    shaped_verify_later = shaped_verify.s().set(queue="selfmend.collect", countdown=countdown)

    def shaped(incident_id: int) -> chain:
        return shaped_remediate.s(incident_id).set(queue="selfmend.collect") | shaped_verify_later

    noop.apply_async(queue="selfmend.collect").get(timeout=60)  # the worker is up
    measured = []
    for round_ in range(rounds + 1):  # the first round warms the worker up, and is not counted
        first = 2 * count * round_
        bare = run_phase(worker, lambda _: baseline | baseline.clone(), range(count))
        shape = run_phase(worker, shaped, range(1, count + 1))
        ids = open_incidents(system, count, first)
        looped = run_phase(worker, remediation_chain, ids)
        resolved = sum(str(system.store.incidents.get(i).status) == "resolved" for i in ids)
        ids = open_incidents(system, count, first + count)
        alone = run_phase(worker, remediate.s, ids)
        phases = {"bare": bare, "shaped": shape, "looped": looped, "alone": alone}
        measured.append(
            {
                **{name: seconds for name, (seconds, _, _) in phases.items()},
                **{f"cpu_{name}": cpu for name, (_, cpu, _) in phases.items()},
                **{f"bench_{name}": own for name, (_, _, own) in phases.items()},
                "resolved": resolved,
            }
        )
    return measured[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=300, help="per phase of a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--postgres", help="the store on PostgreSQL, e.g. postgresql://...:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    # A test run on the same slot has a worker on the same broker DB that would take the
    # bench's tasks (NotRegistered 'bench.noop'): on the tests' Redis, hold the slot as a test
    # run does. A Redis of the bench's own (--redis) is shared with no test run.
    if args.redis.rstrip("/") == resources.REDIS:
        try:
            resources.claim_slot()
        except resources.SlotError as error:
            raise SystemExit(f"{error}; or give the bench a Redis of its own (--redis)") from None
    broker = redis.Redis.from_url(resources.redis_url("broker", args.redis))
    # Two runs at once would take each other's tasks, results and database.
    if not broker.set(RUN_LOCK, os.getpid(), nx=True, ex=3600):
        raise SystemExit(f"another bench.remediation (pid {broker.get(RUN_LOCK)}) uses this Redis")
    try:
        redis.Redis.from_url(resources.redis_url("results", args.redis)).flushdb()
        for key in broker.scan_iter():  # the last run's queues and messages, not the lock
            if key != RUN_LOCK.encode():
                broker.delete(key)
        run(args)
    finally:
        broker.delete(RUN_LOCK)


def run(args: argparse.Namespace) -> None:
    folder = resources.temp_folder("bench-remediation")
    store_url = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{folder}/store.db"
    patterns = 2 * args.incidents * (args.rounds + 1)
    settings = settings_for(folder, store_url, args.redis, patterns)
    os.environ["SELFMEND_BROKER_URL"] = str(settings.broker_url)  # before workers is imported
    os.environ["SELFMEND_RESULT_BACKEND"] = str(settings.result_backend)
    from workers import runtime

    system = System.from_settings(settings)
    # The application reads the settings its patterns' fixes change: set_control changes
    # only a setting some application reads.
    app_reads_what_its_fixes_change(system)
    runtime.install(system)  # the chain's countdown comes from these settings
    worker = start_worker(settings, args.concurrency, args.pool)
    stop = threading.Event()
    threading.Thread(target=feed, args=(system, stop), daemon=True).start()
    try:
        rounds = measure(system, args.incidents, args.rounds, worker.pid)
    finally:
        stop.set()
        worker.terminate()
        worker.wait(30)
    count = args.incidents

    def rates(phase: str) -> str:
        each = sorted(count / r[phase] for r in rounds)
        return f"{median(each):,.0f}/s (rounds {each[0]:,.0f}-{each[-1]:,.0f})"

    ratios = sorted(r["looped"] / r["bare"] for r in rounds)
    shaped = sorted(r["shaped"] / r["bare"] for r in rounds)
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, store "
        f"{store_url.split(':')[0]}, {args.pool} pool of {args.concurrency}, "
        f"{args.rounds} rounds of {count} each"
    )
    print(f"bare chains (noop | noop): {rates('bare')}")
    print(
        f"shaped chains, no store work: {rates('shaped')}; {median(shaped):.2f}x the bare chain "
        f"(rounds {shaped[0]:.2f}-{shaped[-1]:.2f})"
    )
    print(
        f"remediate -> verify chains: {rates('looped')}; overhead {median(ratios):.2f}x the "
        f"bare chain (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}; target <= 1.5x); "
        f"{sum(r['resolved'] for r in rounds):.0f} of {count * args.rounds} verified fixed"
    )
    print(f"incidents remediated: {rates('alone')} (target >= 200)")

    def cpu(phase: str) -> str:
        return f"{1000 * median(r[f'cpu_{phase}'] for r in rounds) / count:.2f} ms"

    print(
        f"worker CPU per item: bare chain {cpu('bare')}, shaped chain {cpu('shaped')}, "
        f"remediate -> verify {cpu('looped')}, remediation {cpu('alone')}"
    )
    for line in cores_check(rounds, count):
        print(line)


PHASES = {
    "bare": "bare chains",
    "shaped": "shaped chains",
    "looped": "remediate -> verify",
    "alone": "remediations",
}


def cores_check(rounds: list[dict[str, float]], count: int) -> list[str]:
    """Per phase, rate x worker CPU per item (the worker's cores kept busy), plus this
    process's cores, against the machine's: a figure that needs more cores than there are was
    timed wrong."""
    cores = os.cpu_count() or 1
    lines, misfits = [], []
    for phase, name in PHASES.items():
        rate = median(count / r[phase] for r in rounds)
        per_item = median(r[f"cpu_{phase}"] for r in rounds) / count
        own = median(r[f"bench_{phase}"] / r[phase] for r in rounds)
        worst = max((r[f"cpu_{phase}"] + r[f"bench_{phase}"]) / r[phase] for r in rounds)
        busy = rate * per_item
        fits = busy + own <= cores and worst <= cores
        if not fits:
            misfits.append(name)
        lines.append(
            f"cores check, {name}: {rate:,.0f}/s x {1000 * per_item:.2f} ms = {busy:.2f} "
            f"worker cores + {own:.2f} bench = {busy + own:.2f} of {cores} "
            f"(busiest round {worst:.2f}): {'fits' if fits else 'DOES NOT FIT, figure suspect'}"
        )
    verdict = "every figure fits" if not misfits else f"suspect: {', '.join(misfits)}"
    return [*lines, f"cores check: {verdict}"]


if __name__ == "__main__":
    main()
