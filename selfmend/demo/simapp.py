"""A simulated shop: its metrics respond to the live settings selfmend changes.

Not a real application — the demo says so on screen. Each fault degrades one metric until the
setting that fixes it is changed: a cache flush drops the hit ratio until ``cache.warm``; a
connection spike holds connections above 40 until ``db.pool_size`` is lowered; slow queries push
p95 query time over 200 ms until ``db.query_cache`` is on. Patterns that learn their series' usual
band stay quiet until it is learned, so the shop first recalls a normal stretch (``recall``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from selfmend.client import Client

FAULT_PATTERNS = {
    "cache_flush": "cache_hit_ratio_low",
    "connection_spike": "db_connections_high",
    "slow_queries": "slow_queries",
}
LABELS = {"service": "shop"}


@dataclass
class SimulatedShop:
    client: Client
    seed: int = 7

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.faults: set[str] = set()

    def inject(self, fault: str) -> None:
        if fault not in FAULT_PATTERNS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULT_PATTERNS)}")
        self.faults.add(fault)

    def tick(self, at: float | None = None) -> None:
        """One second of traffic: push what the application would measure (at ``at``)."""
        self.client.record("cache.hit_ratio", self._hit_ratio(), ts=at, **LABELS)
        self.client.record("postgres.connections", self._connections(), ts=at, database="shop")
        for duration in self._query_times(20):
            self.client.record("db.query_ms", duration, ts=at, **LABELS)

    def recall(self, seconds: float) -> None:
        """The fault-free ``seconds`` before now, as if the shop had been running: what the
        learned patterns need to have seen before they judge its series."""
        now = time.time()
        for second in range(int(seconds), 0, -1):
            self.tick(now - second)

    def _hit_ratio(self) -> float:
        if "cache_flush" in self.faults and not self.client.control("cache.warm", False):
            return self.rng.gauss(0.55, 0.02)
        return min(1.0, self.rng.gauss(0.95, 0.01))

    def _connections(self) -> float:
        demand = 70 if "connection_spike" in self.faults else 25
        pool_size = self.client.control("db.pool_size", 50)
        return float(min(demand + self.rng.randint(-2, 2), pool_size))

    def _query_times(self, count: int) -> list[float]:
        slow = "slow_queries" in self.faults and not self.client.control("db.query_cache", False)
        times = []
        for _ in range(count):
            base = self.rng.lognormvariate(3.5, 0.3)  # about 35 ms
            times.append(
                base + (self.rng.uniform(300, 600) if slow and self.rng.random() < 0.2 else 0.0)
            )
        return times
