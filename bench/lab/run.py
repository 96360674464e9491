"""One lab run: set up, warm up with no fault, inject each fault in turn with fault-free gaps,
then score what selfmend recorded against what the lab did and what the users saw.

Everything it starts is stopped, and every fault undone, however the run ends (an error,
Ctrl-C, SIGTERM); the databases, Redis DBs and folders go back through ``resources.release``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.lab import score, shop_db
from bench.lab.dependency import Dependency
from bench.lab.env import LabEnv
from bench.lab.faults import QUICK, Fault, FaultContext, FaultRecord, catalogue, unknown
from bench.lab.load import Load, crawl
from bench.lab.processes import Child
from bench.lab.store_read import StoreRecords
from tests import resources

BIN = Path(sys.executable).parent
HOLD_AFTER_FIX = 20.0  # a verified fix is kept this long before the lab undoes its fault
POLL = 5.0


@dataclass(frozen=True)
class Plan:
    warmup: float  # fault-free seconds before the first fault: selfmend learns the usual
    gap: float  # fault-free seconds after each fault
    day: float  # one compressed day of the load's shape
    mean_rps: float
    faults: tuple[str, ...] | None  # None: every fault


# The warm-up outlasts the learned patterns' (LEARN_WARM_UP_SECONDS) and the relearning of a
# band that was still empty (5 min from the first analyze pass).
FULL = Plan(warmup=300, gap=20, day=300, mean_rps=12, faults=None)
QUICK_PLAN = Plan(warmup=300, gap=20, day=120, mean_rps=12, faults=QUICK)


def say(message: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Lab:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.env = LabEnv.take()
        self.dependency = Dependency(self.env.dependency_port)
        folder = self.env.folder
        worker_name = f"shop@{socket.gethostname()}"
        self.service = Child("service", [sys.executable, "-m", "bench.lab.service"],
                             self.env.service(), folder)  # fmt: skip
        self.shop_worker = Child(
            "shop-worker",
            [str(BIN / "celery"), "-A", "bench.lab.shop_tasks", "worker", "--concurrency=2",
             "-n", worker_name, "--loglevel=INFO"],
            {**self.env.service(), "SHOP_WORKER_NAME": worker_name},
            folder,
        )  # fmt: skip
        self.selfmend = Child(
            "selfmend",
            [str(BIN / "celery"), "-A", "workers", "worker", "-B", "--concurrency=2", "-l", "info"],
            self.env.selfmend(),
            folder,
        )
        self.children = [self.service, self.shop_worker, self.selfmend]
        self.load = Load(self.env.service_url, plan.mean_rps, plan.day)
        self.records: list[FaultRecord] = []

    def run(self) -> str:
        self._start()
        run_start = time.time()
        self.load.start()
        say(f"warm-up: {self.plan.warmup:.0f} s with no fault")
        self._wait(self.plan.warmup)
        context = FaultContext(self.env, self.dependency, self.shop_worker)
        for fault in catalogue(context):
            if self.plan.faults is None or fault.name in self.plan.faults:
                self._inject(fault)
                self._wait(self.plan.gap)
        self.load.stop()
        return self._score(run_start, time.time())

    def close(self) -> None:
        for child in self.children:
            child.stop()
        self.dependency.stop()

    def _start(self) -> None:
        say(f"slot {resources.slot()}, logs in {self.env.folder}")
        subprocess.run([str(BIN / "selfmend"), "db", "upgrade"], env=self.env.selfmend(),
                       check=True, capture_output=True)  # fmt: skip
        shop_db.seed(self.env.shop_db_url)
        self.dependency.start()
        for child in self.children:
            child.start()
        deadline = time.monotonic() + 60
        while True:
            self._check_children()
            try:
                if httpx.get(f"{self.env.service_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the shop did not answer within 60 s") from None
            time.sleep(0.5)
        crawl(self.env.service_url)
        say("shop, its worker and selfmend are up; the shop's cache is warm")

    def _inject(self, fault: Fault) -> None:
        started = time.time()
        say(f"fault {fault.name}: {fault.broke} (at most {fault.deadline:.0f} s)")
        try:
            detail = fault.inject()
            fixed = self._wait_for_fix(started, fault.deadline)
        finally:
            fault.undo()
        ended = time.time()
        self.records.append(FaultRecord(fault.name, fault.broke, started, ended, detail))
        say(f"fault {fault.name} undone after {ended - started:.0f} s"
            + (" (a fix was verified)" if fixed else ""))  # fmt: skip

    def _wait_for_fix(self, started: float, deadline: float) -> bool:
        records = StoreRecords(self.env.store_url)
        try:
            while time.time() < started + deadline:
                self._wait(POLL)
                if records.fixed_since(started):
                    self._wait(min(HOLD_AFTER_FIX, started + deadline - time.time()))
                    return True
            return False
        finally:
            records.close()

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._check_children()
            time.sleep(min(left, 1.0))

    def _check_children(self) -> None:
        for child in self.children:
            if not child.alive():
                tail = child.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{child.name} exited; the end of its log:\n{tail}")

    def _score(self, run_start: float, run_end: float) -> str:
        records = StoreRecords(self.env.store_url)
        try:
            incidents = records.incidents()
            executions = records.executions()
            verifications = records.verifications()
        finally:
            records.close()
        windows = [score.FaultWindow(r.name, r.started, r.ended) for r in self.records]
        hits = [score.Hit(r.ts, r.latency, r.status) for r in self.load.requests]
        settled = run_start + 30  # the cache is cold at first
        baseline = [
            hit for hit in hits
            if hit.ts >= settled and not any(score.in_window(hit.ts, w) for w in windows)
        ]  # fmt: skip
        objective = score.objective_from(baseline)
        say(
            f"{len(hits)} requests; objective p95 <= {objective.p95_seconds * 1000:.0f} ms, "
            f"errors <= {objective.error_rate:.1%} (from {len(baseline)} fault-free requests)"
        )
        owned = score.attribute(incidents, windows)
        scores = []
        for window, record in zip(windows, self.records, strict=True):
            result = score.score_fault(window, owned[window.name], executions, verifications,
                                       hits, objective)  # fmt: skip
            scores.append(result)
            print(f"{score.report(result)}\n    broke: {record.broke} {record.detail}")
        false = [i for i in incidents if score.owner(i.opened_at, windows) is None]
        print("false incidents: " + (", ".join(f"#{i.id} {i.pattern} {i.target}" for i in false)
                                     or "none"))  # fmt: skip
        per_hour = score.false_incidents_per_hour(incidents, windows, run_start, run_end)
        return score.summary_line(scores, per_hour)


def main(quick: bool, faults: tuple[str, ...] | None = None) -> int:
    """``faults``: only these, in the full run's order and shape (a developer's rerun)."""

    def stop(number: int, _frame) -> None:
        raise KeyboardInterrupt(f"signal {number}")

    signal.signal(signal.SIGTERM, stop)
    if faults is not None and (refused := unknown(faults)):
        say(refused)
        return 2
    lab = None
    try:
        plan = QUICK_PLAN if quick else FULL
        lab = Lab(plan if faults is None else replace(plan, faults=faults))
        line = lab.run()
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    except resources.SlotError as error:
        say(str(error))
        return 2
    finally:
        if lab is not None:
            lab.close()
        resources.release()
    print(line, flush=True)
    return 0
