"""The application's cache as selfmend helps it: loaders by key pattern, recent keys, warming.

    @client.cache_loader("product:{id}", ttl=300)
    def load_product(id: str) -> dict: ...

    product = client.cached("product:42")  # from the cache, or loaded, stored and counted

Values are JSON in the application's cache Redis (``SELFMEND_CACHE_REDIS_URL``). Every key
served is noted in a sorted set of recent keys, trimmed to the newest ``RECENT_KEPT``. After a
flush, selfmend's ``cache_warm`` action asks for the recent keys that are gone; the client's
warmer thread loads them with the application's own loaders, which run only here, in the
application: selfmend never runs application code. The recent keys and the warm requests live
in selfmend's Redis (``SELFMEND_REDIS_URL``) when there is one, outside the cache: a flush of
the cache, or its eviction under memory pressure, would otherwise take with it the very list
of what to warm back. A live setting ``cache.ttl.<prefix>`` (what
``cache_ttl`` moves) overrides a loader's TTL for the keys it stores from then on.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from selfmend.errors import ConfigurationError, InvalidInput

log = structlog.get_logger(__name__)

RECENT_KEY = "selfmend:cache:recent"
WARM_QUEUE = "selfmend:cache:warm"
TTL_CONTROL = "cache.ttl."
RECENT_KEPT = 10_000
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Loader:
    pattern: str
    load: Callable[..., Any]
    ttl: int

    @property
    def prefix(self) -> str:
        """The literal start of the pattern (``product:`` of ``product:{id}``)."""
        return self.pattern.split("{", 1)[0]

    def fields(self, key: str) -> dict[str, str] | None:
        """The pattern's fields in ``key``, or None if the key is not one of this loader's."""
        parts = _FIELD.split(self.pattern)
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^:]+)"
            for index, part in enumerate(parts)
        )
        match = re.fullmatch(regex, key)
        return None if match is None else match.groupdict()


class CacheLoaders:
    """The client's side: read through the cache, load on a miss, warm what selfmend asks for."""

    def __init__(
        self, redis: Any, ttl_override: Callable[[str], Any], index: Any | None = None
    ) -> None:
        self.redis = redis
        self.index = redis if index is None else index  # the recent keys, the warm requests
        self.ttl_override = ttl_override
        self.loaders: list[Loader] = []
        self.hits = self.misses = 0
        self._warmer: threading.Thread | None = None
        self._stop = threading.Event()

    def register(self, pattern: str, load: Callable[..., Any], ttl: int) -> None:
        if not _FIELD.search(pattern) or ttl <= 0:
            raise ConfigurationError(
                f"cache_loader({pattern!r}, ttl={ttl}): the pattern needs a field such as "
                "'{id}', and the TTL must be at least 1 second"
            )
        self.loaders.append(Loader(pattern, load, ttl))
        if self._warmer is None:
            self._warmer = threading.Thread(target=self._warm, daemon=True, name="selfmend-warm")
            self._warmer.start()

    def get(self, key: str) -> Any:
        stored = self.redis.get(key)
        self._note(key)
        if stored is not None:
            self.hits += 1
            return json.loads(stored)
        self.misses += 1
        return self.load(key)

    def load(self, key: str) -> Any:
        """Load ``key`` with its loader and store it with its TTL (or the live override)."""
        for loader in self.loaders:
            fields = loader.fields(key)
            if fields is not None:
                value = loader.load(**fields)
                override = self.ttl_override(TTL_CONTROL + loader.prefix)
                ttl = int(override) if override else loader.ttl
                self.redis.set(key, json.dumps(value), ex=ttl)
                return value
        raise InvalidInput(f"cached({key!r}): no cache_loader pattern matches this key")

    def hit_ratio(self) -> float | None:
        """Hits over reads since the last call, and start counting anew; None with no reads."""
        reads, hits = self.hits + self.misses, self.hits
        self.hits = self.misses = 0
        return hits / reads if reads else None

    def _note(self, key: str) -> None:
        with self.index.pipeline(transaction=False) as pipe:
            pipe.zadd(RECENT_KEY, {key: time.time()})
            pipe.zremrangebyrank(RECENT_KEY, 0, -RECENT_KEPT - 1)
            pipe.execute()

    def _warm(self) -> None:
        while not self._stop.is_set():
            try:
                request = self.index.blpop([WARM_QUEUE], timeout=1)
                if request is not None:
                    self._warm_keys(json.loads(request[1]))
            except Exception:  # a broken request or a lost connection: log, and keep warming
                log.exception("cache.warm_failed")
                self._stop.wait(1)

    def _warm_keys(self, keys: list[str]) -> None:
        for key in keys:
            try:
                if not self.redis.exists(key):
                    self.load(key)
            except Exception:  # one key's loader failing must not cost the others their warmth
                log.exception("cache.warm_key_failed", key=key)

    def close(self) -> None:
        """Stop warming; the warmer finishes the request it holds (it waits at most 1 s)."""
        self._stop.set()
        if self._warmer is not None:
            self._warmer.join(5)
