"""The cache actions against a real Redis: the application's loaders read through and note the
keys; after a flush, cache_warm has the client's warmer load the recent keys back; cache_ttl
moves a prefix's TTLs and the live setting loaders use, and both undo what they did."""

from __future__ import annotations

import pytest
import redis

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import StepTooLarge
from selfmend.remedy.actions.cache_ttl import CacheTTL
from selfmend.remedy.actions.cache_warm import CacheWarm
from selfmend.system import System
from tests.resources import empty_redis, redis_url

from .conftest import wait_for

pytestmark = pytest.mark.integration

CACHE = redis_url("app")


@pytest.fixture
def shop(tmp_path):
    """The application: a client with a product loader, and selfmend's system beside it."""
    empty_redis("app")
    settings = Settings(
        home=tmp_path,
        store_url=f"sqlite:///{tmp_path}/store.db",
        cache_redis_url=CACHE,
        redis_url=empty_redis("state"),  # selfmend's own Redis, where the recent keys live
    )
    system = System.from_settings(settings, patterns=())
    client = Client(settings, store=system.store)
    loads: list[str] = []

    @client.cache_loader("product:{id}", ttl=300)
    def load_product(id: str) -> dict:
        loads.append(id)
        return {"id": id, "name": f"product {id}"}

    yield client, system, loads
    client.close()


def test_reads_go_through_the_cache_and_a_miss_is_loaded_once(shop):
    client, _, loads = shop
    assert client.cached("product:7") == {"id": "7", "name": "product 7"}
    assert client.cached("product:7") == {"id": "7", "name": "product 7"}

    assert loads == ["7"]
    assert 290 <= redis.Redis.from_url(CACHE).ttl("product:7") <= 300
    assert client.cache.hit_ratio() == 0.5


def test_after_a_flush_the_recent_keys_are_warmed_back_once_and_undo_drops_them(shop):
    client, system, loads = shop
    for id in ("1", "2", "3"):
        client.cached(f"product:{id}")
    cache = redis.Redis.from_url(CACHE)
    cache.delete("product:1", "product:3")  # a flush of part of the cache
    action = system.catalogue.get("cache_warm")
    assert isinstance(action, CacheWarm)

    plan = action.plan({"prefix": "product:"})
    assert sorted(plan.params["keys"]) == ["product:1", "product:3"]
    assert action.apply(plan) == {"changed": True, "requested": 2}
    wait_for(lambda: cache.exists("product:1", "product:3") == 2, timeout=10, every=0.1)
    assert sorted(loads) == ["1", "1", "2", "3", "3"]
    assert action.apply(plan) == {"changed": False, "requested": 0}  # already warm

    assert action.rollback(plan) == {"changed": True, "removed": 2}
    assert cache.exists("product:1", "product:2", "product:3") == 1


def test_a_flush_of_the_whole_cache_keeps_the_recent_keys_to_warm_back(shop):
    client, system, loads = shop
    for id in ("1", "2"):
        client.cached(f"product:{id}")
    redis.Redis.from_url(CACHE).flushdb()  # the whole cache gone, as an operator's FLUSHDB
    action = system.catalogue.get("cache_warm")

    plan = action.plan({"prefix": "product:"})

    assert sorted(plan.params["keys"]) == ["product:1", "product:2"]
    assert action.apply(plan) == {"changed": True, "requested": 2}
    cache = redis.Redis.from_url(CACHE)
    wait_for(lambda: cache.exists("product:1", "product:2") == 2, timeout=10, every=0.1)
    assert sorted(loads) == ["1", "1", "2", "2"]


def test_a_prefix_ttl_moves_with_its_setting_and_is_restored(shop):
    client, system, _ = shop
    for id in ("1", "2"):
        client.cached(f"product:{id}")
    cache = redis.Redis.from_url(CACHE)
    action = system.catalogue.get("cache_ttl")
    assert isinstance(action, CacheTTL)

    plan = action.plan({"prefix": "product:", "ttl_seconds": 60})
    assert action.apply(plan) == {"changed": True, "keys": 2, "ttl_seconds": 60}
    assert all(cache.ttl(f"product:{id}") <= 60 for id in ("1", "2"))
    client.live._values.clear()  # the client's settings cache, past its TTL
    client.cached("product:9")  # loaded now: stored with the new TTL
    assert cache.ttl("product:9") <= 60

    assert action.rollback(plan)["changed"] is True
    assert all(cache.ttl(f"product:{id}") > 200 for id in ("1", "2"))
    assert system.store.controls.get("cache.ttl.product:") is None


def test_a_prefix_with_more_keys_than_the_bound_is_refused(shop):
    _, system, _ = shop
    cache = redis.Redis.from_url(CACHE)
    cache.mset({f"session:{i}": "x" for i in range(30)})

    with pytest.raises(StepTooLarge, match="over 20 keys under 'session:'"):
        system.catalogue.get("cache_ttl").plan(
            {"prefix": "session:", "ttl_seconds": 60, "max_keys": 20}
        )
