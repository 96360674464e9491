"""Chaos: a real HTTP service on loopback fails at random and recovers, while three worker
processes call it through one breaker shared in a real Redis (database 2), with transitions
stored in a real PostgreSQL. The breaker must open on the failures (seen by more than one
process), shed calls to the fallback while open, probe, and close once the service is back."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from selfmend.config import Settings
from selfmend.resilience.breaker import State, registry_for
from selfmend.store import Store
from tests.resources import database_url, empty_redis, fresh_database, redis_url

from .conftest import wait_for

pytestmark = pytest.mark.integration

STATE = redis_url("breaker")
SETTINGS = {
    "failure_threshold": 5,
    "window_size": 10,
    "reset_timeout": 0.4,
    "half_open_probes": 2,
    "sync_seconds": 0.05,
}


class FlakyService(ThreadingHTTPServer):
    """Answers 200 while healthy; while failing, answers 500 to ``failure_share`` of requests
    at random. Counts what it answered."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failure_share = 0.0
        self.answers: Counter[int] = Counter()
        self.random = random.Random(11)
        self.lock = threading.Lock()

    def answer(self) -> int:
        with self.lock:
            status = 500 if self.random.random() < self.failure_share else 200
            self.answers[status] += 1
            return status


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = self.server.answer()
        body = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def call_the_service(url: str, store_url: str, ready, stop, results) -> None:
    """One worker process: call the service through the shared breaker until ``stop``."""
    settings = Settings(store_url=store_url, redis_url=STATE)
    store = Store.from_url(store_url, migrate=False)
    outcomes: Counter[str] = Counter()

    def shed(_url: str) -> str:
        outcomes["shed"] += 1
        return "fallback"

    breaker = registry_for(settings, store).get("quotes", fallback=shed, **SETTINGS)
    with httpx.Client(timeout=2) as http:

        def fetch(target: str) -> str:
            http.get(target).raise_for_status()
            return "live"

        ready.release()
        while not stop.is_set():
            try:
                if breaker.call(fetch, url) == "live":
                    outcomes["ok"] += 1
            except httpx.HTTPStatusError:
                outcomes["failed"] += 1
            time.sleep(0.005)
    store.close()
    results.put(dict(outcomes))


@pytest.fixture
def store():
    empty_redis("breaker")
    store = Store.from_url(fresh_database("breaker_chaos"), migrate=True)
    yield store
    store.close()


def transitions(store: Store) -> list[tuple[str, str]]:
    return [(row["from_state"], row["to_state"]) for row in store.breaker_events.recent("quotes")]


@pytest.fixture
def service():
    server = FlakyService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_breaker_opens_sheds_probes_and_closes_across_processes(store, service):
    url = f"http://127.0.0.1:{service.server_address[1]}/quote"
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Semaphore(0), context.Event(), context.Queue()
    workers = [
        context.Process(
            target=call_the_service, args=(url, database_url("breaker_chaos"), ready, stop, results)
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert ready.acquire(timeout=60)
    control = registry_for(Settings(redis_url=STATE), store).control
    time.sleep(0.5)  # healthy
    service.failure_share = 0.8
    wait_for(lambda: control.state("quotes").state is State.OPEN, timeout=10, every=0.05)
    # failing on: the breaker sheds, then probes
    wait_for(lambda: ("open", "half_open") in transitions(store), timeout=30, every=0.05)
    answered_while_failing = sum(service.answers.values())
    service.failure_share = 0.0  # recovered
    wait_for(lambda: control.state("quotes").state is State.CLOSED, timeout=10, every=0.05)
    time.sleep(0.5)
    stop.set()
    outcomes = Counter()
    for _ in workers:
        outcomes.update(results.get(timeout=30))
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0

    rows = store.breaker_events.recent("quotes")
    moves = transitions(store)
    assert moves[0] == ("closed", "open")
    assert ("open", "half_open") in moves
    assert moves[-1] == ("half_open", "closed")  # closed again after the recovery
    # One history, each transition made once: every move starts where the one before ended.
    assert all(before[1] == after[0] for before, after in itertools.pairwise(moves))
    assert rows[0]["evidence"]["failing_processes"] >= 2  # not one node's evidence alone
    assert outcomes["shed"] > 0 and outcomes["failed"] > 0 and outcomes["ok"] > 0
    calls = outcomes["ok"] + outcomes["failed"] + outcomes["shed"]
    assert sum(service.answers.values()) < calls  # shed calls never reached the service
    assert answered_while_failing > 0
    assert control.state("quotes").state is State.CLOSED
