"""Redis collector: keyspace hit ratio, memory, clients and throughput from ``INFO``."""

from __future__ import annotations

from typing import Any

import redis

from selfmend.collect.base import samples_at
from selfmend.models import Sample


class RedisCollector:
    """Hit ratio is over the interval since the previous call, so a drop shows at once."""

    name = "redis"

    def __init__(self, url: str, client: Any | None = None) -> None:
        self.client = client or redis.Redis.from_url(url, socket_timeout=5)
        kwargs = self.client.connection_pool.connection_kwargs
        self.instance = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        self._previous: tuple[int, int] | None = None

    def collect(self) -> list[Sample]:
        info = self.client.info()
        return samples_at(
            None,
            {
                "redis.hit_ratio": self._hit_ratio(info["keyspace_hits"], info["keyspace_misses"]),
                "redis.used_memory_bytes": info["used_memory"],
                "redis.connected_clients": info["connected_clients"],
                "redis.ops_per_sec": info["instantaneous_ops_per_sec"],
            },
            {"instance": self.instance},
        )

    def _hit_ratio(self, hits: int, misses: int) -> float | None:
        previous_hits, previous_misses = self._previous or (0, 0)
        self._previous = (hits, misses)
        delta_hits, delta_misses = hits - previous_hits, misses - previous_misses
        if delta_hits < 0 or delta_misses < 0:  # the server restarted: counters began anew
            delta_hits, delta_misses = hits, misses
        lookups = delta_hits + delta_misses
        return delta_hits / lookups if lookups else None
