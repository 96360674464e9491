"""cache_warm: refill the application's cache with the keys it used lately, after a flush.

The plan reads the recent keys the client noted (``selfmend.cache``, kept outside the cache when
selfmend has a Redis of its own, so a flush does not lose them), newest first, that start
with ``prefix`` and are missing now, at most ``max_keys``; apply asks the application's warmer
to load exactly those, through the application's own loaders (selfmend runs none of its code).
A key already back in the cache is not asked for again. Undo drops the keys it asked for, so
the cache is as it was. Low risk: a load the application would have made on the next read.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.cache import RECENT_KEY, WARM_QUEUE
from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params

KEY_PREFIX = r"^[A-Za-z0-9_:.{}-]*$"


def connected(redis: Any | None, action: str) -> Any:
    """The application's cache Redis, or the error that names the setting it needs."""
    if redis is None:
        raise ActionError(f"{action}: no cache Redis: set SELFMEND_CACHE_REDIS_URL")
    return redis


def key_text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


class CacheWarmParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = Field("", max_length=200, pattern=KEY_PREFIX, description="Only these keys.")
    max_keys: int = Field(500, ge=1, le=5000, description="Keys one apply asks for at most.")
    recent_seconds: float = Field(3600.0, gt=0, description="Keys used this recently.")


class CacheWarm:
    name = "cache_warm"
    params_model = CacheWarmParams
    risk = Risk.LOW
    reversible = True

    def __init__(self, redis: Any | None, index: Any | None = None) -> None:
        self._redis = redis
        self._index = redis if index is None else index  # the recent keys, the warm requests

    @property
    def redis(self) -> Any:
        return connected(self._redis, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(CacheWarmParams, self.name, params)
        since = time.time() - parsed.recent_seconds
        noted = connected(self._index, self.name).zrevrangebyscore(RECENT_KEY, "+inf", since)
        recent = [key_text(key) for key in noted]
        chosen = [key for key in recent if key.startswith(parsed.prefix)]
        missing = self._missing(chosen)[: parsed.max_keys]
        return Plan(
            self.name,
            parsed.prefix or "*",
            {**parsed.model_dump(), "keys": missing},
            {"keys": missing},
            f"warm {len(missing)} recently used keys under {parsed.prefix or '*'} that are "
            "missing from the cache",
        )

    def _missing(self, keys: list[str]) -> list[str]:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            present = pipe.execute()
        return [key for key, there in zip(keys, present, strict=True) if not there]

    def apply(self, plan: Plan) -> dict[str, Any]:
        missing = self._missing(plan.params["keys"])
        if not missing:
            return {"changed": False, "requested": 0}
        connected(self._index, self.name).rpush(WARM_QUEUE, json.dumps(missing))
        return {"changed": True, "requested": len(missing)}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        keys = plan.undo["keys"]
        removed = self.redis.delete(*keys) if keys else 0
        return {"changed": bool(removed), "removed": removed}
