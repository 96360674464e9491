"""The Redis collector's reading of ``INFO``, on INFO replies of a master and of a replica."""

import pytest

from selfmend.collect.redis import SERIES, RedisCollector

MASTER_INFO = {
    "role": "master",
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "used_memory": 600_000_000,
    "maxmemory": 0,
    "mem_fragmentation_ratio": 1.7,
    "evicted_keys": 0,
    "connected_clients": 12,
    "rejected_connections": 3,
    "instantaneous_ops_per_sec": 250,
    "loading": 0,
    "latest_fork_usec": 1_500_000,
    "rdb_last_bgsave_status": "err",
    "aof_enabled": 0,
    "aof_last_write_status": "ok",
}
REPLICA_INFO = {
    **MASTER_INFO,
    "role": "slave",
    "maxmemory": 800_000_000,
    "aof_enabled": 1,
    "master_link_status": "up",
    "master_last_io_seconds_ago": 4,
}


class FakeRedis:
    def __init__(self, info: dict) -> None:
        self.reply = info
        self.connection_pool = type(
            "Pool", (), {"connection_kwargs": {"host": "cache", "port": 6380}}
        )

    def info(self) -> dict:
        return self.reply


def collected(info: dict) -> dict[str, float]:
    samples = RedisCollector("redis://cache:6380", client=FakeRedis(info)).collect()
    assert {sample.labels["instance"] for sample in samples} == {"cache:6380"}
    return {sample.series: sample.value for sample in samples}


def test_a_replica_with_maxmemory_and_aof_gives_every_declared_series():
    values = collected(REPLICA_INFO)

    assert sorted(values) == sorted(SERIES)
    assert values["redis.memory_used_ratio"] == pytest.approx(0.75)
    assert values["redis.master_link_up"] == 1.0
    assert values["redis.master_last_io_seconds"] == 4
    assert values["redis.aof_last_write_ok"] == 1.0


def test_a_master_reports_health_flags_and_counters_and_skips_what_does_not_apply():
    values = collected(MASTER_INFO)

    assert values["redis.hit_ratio"] == pytest.approx(0.9)
    assert values["redis.rdb_last_bgsave_ok"] == 0.0
    assert values["redis.latest_fork_seconds"] == pytest.approx(1.5)
    assert values["redis.rejected_connections_total"] == 3
    assert values["redis.mem_fragmentation_ratio"] == pytest.approx(1.7)
    absent = {"redis.memory_used_ratio", "redis.aof_last_write_ok", "redis.master_link_up"}
    assert absent.isdisjoint(values)


def test_a_replica_whose_link_is_down_says_so():
    values = collected({**REPLICA_INFO, "master_link_status": "down"})

    assert values["redis.master_link_up"] == 0.0
    assert "redis.master_last_io_seconds" not in values
