"""Redis collector: keyspace hit ratio, memory, clients, throughput, persistence and replication
health from ``INFO``."""

from __future__ import annotations

from typing import Any

import redis

from selfmend.collect.base import samples_at
from selfmend.models import Sample

SERIES = (
    "redis.hit_ratio",
    "redis.used_memory_bytes",
    "redis.memory_used_ratio",
    "redis.mem_fragmentation_ratio",
    "redis.evicted_keys_total",
    "redis.connected_clients",
    "redis.rejected_connections_total",
    "redis.ops_per_sec",
    "redis.loading",
    "redis.latest_fork_seconds",
    "redis.rdb_last_bgsave_ok",
    "redis.aof_last_write_ok",
    "redis.master_link_up",
    "redis.master_last_io_seconds",
)
"""Every series this collector emits (some only where they apply: a maxmemory, AOF, a replica)."""


class RedisCollector:
    """Hit ratio is over the interval since the previous call, so a drop shows at once.

    Counters (``*_total``) are Redis' own running totals; patterns read them with ``rate``.
    """

    name = "redis"

    def __init__(self, url: str, client: Any | None = None) -> None:
        self.client = client or redis.Redis.from_url(url, socket_timeout=5)
        kwargs = self.client.connection_pool.connection_kwargs
        self.instance = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        self._previous: tuple[int, int] | None = None

    def collect(self) -> list[Sample]:
        info = self.client.info()
        maxmemory = info.get("maxmemory", 0)
        return samples_at(
            None,
            {
                "redis.hit_ratio": self._hit_ratio(info["keyspace_hits"], info["keyspace_misses"]),
                "redis.used_memory_bytes": info["used_memory"],
                "redis.memory_used_ratio": info["used_memory"] / maxmemory if maxmemory else None,
                "redis.mem_fragmentation_ratio": info["mem_fragmentation_ratio"],
                "redis.evicted_keys_total": info["evicted_keys"],
                "redis.connected_clients": info["connected_clients"],
                "redis.rejected_connections_total": info["rejected_connections"],
                "redis.ops_per_sec": info["instantaneous_ops_per_sec"],
                "redis.loading": info["loading"],
                "redis.latest_fork_seconds": info["latest_fork_usec"] / 1e6,
                "redis.rdb_last_bgsave_ok": _is_ok(info["rdb_last_bgsave_status"]),
                "redis.aof_last_write_ok": (
                    _is_ok(info["aof_last_write_status"]) if info.get("aof_enabled") else None
                ),
                **_replica_link(info),
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


def _is_ok(status: str) -> float:
    return 1.0 if status == "ok" else 0.0


def _replica_link(info: dict[str, Any]) -> dict[str, float | None]:
    """On a replica: whether its link to the master is up, and seconds since it heard from it."""
    if info.get("role") != "slave":
        return {}
    up = info.get("master_link_status") == "up"
    return {
        "redis.master_link_up": 1.0 if up else 0.0,
        "redis.master_last_io_seconds": info.get("master_last_io_seconds_ago") if up else None,
    }
