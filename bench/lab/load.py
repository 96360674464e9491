"""The shop's users: requests at a daily-shaped rate, a "day" compressed to minutes, each
request's time, latency and status recorded for the scorer (the service's own traffic).

Arrivals are Poisson at the rate of the moment (a sine between half and one and a half times
the mean, its low at the start of each day); a pool of threads sends them, so a slow service
makes requests wait as real users would, rather than slowing the arrivals.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from dataclasses import dataclass

import httpx

from bench.lab.shop_db import HOT_PRODUCTS, PRODUCTS

CATALOGUE_BROWSED = 2_000  # product pages are read from these, a few far more than the rest
SENDERS = 32


@dataclass(frozen=True)
class Request:
    ts: float  # when it was sent, epoch seconds
    latency: float  # seconds; the timeout for a request that got no answer
    status: int  # 0: no answer (timeout, refused)
    route: str


def rate(elapsed: float, mean: float, day: float) -> float:
    return mean * (1 - 0.5 * math.cos(2 * math.pi * elapsed / day))


def pick(rng: random.Random) -> tuple[str, str]:
    """One user action: method and path."""
    roll = rng.random()
    if roll < 0.55:  # browsing: log-uniform over the catalogue's first pages
        return "GET", f"/products/{int(CATALOGUE_BROWSED ** rng.random())}"
    if roll < 0.75:
        return "GET", f"/search?sku=SKU-{rng.randint(1, PRODUCTS):07d}"
    if roll < 0.87:
        return "POST", f"/orders?product_id={rng.randint(1, HOT_PRODUCTS)}"
    return "GET", f"/recommendations/{rng.randint(1, PRODUCTS)}"


def crawl(base_url: str, threads: int = 8) -> None:
    """Read every browsed product page once, so the run starts with a warm cache, as a service
    that has been up for a while has."""
    pages = queue.Queue()
    for product_id in range(1, CATALOGUE_BROWSED + 1):
        pages.put(product_id)

    def read() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while True:
                try:
                    product_id = pages.get_nowait()
                except queue.Empty:
                    return
                http.get(f"/products/{product_id}")

    workers = [threading.Thread(target=read, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class Load:
    def __init__(self, base_url: str, mean_rps: float, day_seconds: float, timeout: float = 10.0):
        self.base_url = base_url
        self.mean_rps = mean_rps
        self.day_seconds = day_seconds
        self.timeout = timeout
        self.requests: list[Request] = []
        self._due: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._arrivals, daemon=True)] + [
            threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for _ in range(SENDERS):
            self._due.put(None)
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _arrivals(self) -> None:
        rng = random.Random(14)
        began = time.monotonic()
        while not self._stop.is_set():
            now = rate(time.monotonic() - began, self.mean_rps, self.day_seconds)
            self._stop.wait(rng.expovariate(now))
            self._due.put(pick(rng))

    def _send(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            while (job := self._due.get()) is not None:
                method, path = job
                sent, started = time.time(), time.perf_counter()
                try:
                    status = http.request(method, path).status_code
                except httpx.HTTPError:
                    status = 0
                route = path.split("?")[0].rsplit("/", 1)[0] or path.split("?")[0]
                self.requests.append(Request(sent, time.perf_counter() - started, status, route))
