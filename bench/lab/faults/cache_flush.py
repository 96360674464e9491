"""FLUSHDB of the shop's cache Redis: every product page misses until it is loaded again."""

from __future__ import annotations

import redis

from bench.lab.faults import FaultContext


class CacheFlush:
    name = "cache_flush"
    broke = "cache hit ratio (every cached product page gone)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.url = context.env.cache_url

    def inject(self) -> dict:
        with redis.Redis.from_url(self.url) as cache:
            keys = cache.dbsize()
            cache.flushdb()
        return {"keys_flushed": keys}

    def undo(self) -> None:
        """A flush is an event, not a state: nothing stays broken for the lab to put back; the
        cache refills as pages are read (or as selfmend warms it)."""
