"""cache_ttl: change how long the application's cache keeps the keys under a prefix.

A TTL too short sends every read to the database; one too long serves stale data. Apply sets
the TTL of the existing keys under ``prefix`` and the live setting ``cache.ttl.<prefix>`` that
the client's loaders use for the keys they store from then on. At most ``max_keys`` keys: a
prefix with more is refused, not half-done. Undo restores each key's remaining TTL as the plan
found it, and the setting. Medium risk: a shorter TTL raises the load on what the cache spares.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.cache import TTL_CONTROL
from selfmend.errors import StepTooLarge
from selfmend.models import Risk
from selfmend.remedy.actions.cache_warm import KEY_PREFIX, connected, key_text
from selfmend.remedy.base import Plan, parse_params
from selfmend.store.controls import ControlStore

_MISSING = -2  # PTTL of a key that is gone
_NO_TTL = -1


class CacheTTLParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(min_length=1, max_length=200, pattern=KEY_PREFIX)
    ttl_seconds: int = Field(ge=1, le=7 * 86400)
    max_keys: int = Field(1000, ge=1, le=10_000)


class CacheTTL:
    name = "cache_ttl"
    params_model = CacheTTLParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, redis: Any | None, controls: ControlStore, actor: str = "selfmend") -> None:
        self._redis = redis
        self.controls = controls
        self.actor = actor

    @property
    def redis(self) -> Any:
        return connected(self._redis, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(CacheTTLParams, self.name, params)
        keys = []
        for key in self.redis.scan_iter(match=_glob(parsed.prefix), count=1000):
            keys.append(key_text(key))
            if len(keys) > parsed.max_keys:
                raise StepTooLarge(
                    f"{self.name}: over {parsed.max_keys} keys under {parsed.prefix!r}; "
                    "raise max_keys or name a narrower prefix"
                )
        setting = TTL_CONTROL + parsed.prefix
        return Plan(
            self.name,
            parsed.prefix,
            {**parsed.model_dump(), "keys": keys},
            {
                "ttls_ms": dict(zip(keys, self._ttls(keys), strict=True)),
                "setting": self.controls.get(setting),
            },
            f"set the TTL of {len(keys)} keys under {parsed.prefix} to {parsed.ttl_seconds} s",
        )

    def _ttls(self, keys: list[str]) -> list[int]:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
            return pipe.execute()

    def apply(self, plan: Plan) -> dict[str, Any]:
        ttl = plan.params["ttl_seconds"]
        setting = TTL_CONTROL + plan.params["prefix"]
        with self.redis.pipeline(transaction=False) as pipe:
            for key in plan.params["keys"]:
                pipe.expire(key, ttl)
            moved = sum(pipe.execute())
        changed = self.controls.get(setting) != ttl
        if changed:
            self.controls.set(setting, ttl, self.actor)
        return {"changed": changed or bool(moved), "keys": moved, "ttl_seconds": ttl}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        restored = 0
        with self.redis.pipeline(transaction=False) as pipe:
            for key, ttl_ms in plan.undo["ttls_ms"].items():
                if ttl_ms == _NO_TTL:
                    pipe.persist(key)
                elif ttl_ms != _MISSING:
                    pipe.pexpire(key, ttl_ms)
            restored = sum(bool(done) for done in pipe.execute())
        setting, before = TTL_CONTROL + plan.params["prefix"], plan.undo["setting"]
        reset = self.controls.get(setting) != before
        if reset and before is None:
            self.controls.delete(setting, self.actor)
        elif reset:
            self.controls.set(setting, before, self.actor)
        return {"changed": reset or bool(restored), "keys": restored}


def _glob(prefix: str) -> str:
    """The SCAN pattern of the keys under ``prefix``, its glob characters taken literally."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix)
    return f"{escaped}*"
