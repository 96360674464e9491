"""Redis breaker storage: every process using the same Redis and name shares one breaker.

Each step is one Lua script, atomic in Redis and one round trip: ``record.lua`` counts calls'
outcomes (a process's pending successes, then a failure) and returns the state, ``move.lua``
is the compare-and-set of a transition, and ``claim_probe.lua`` takes a half-open probe slot.
A breaker's keys share a hash tag, so they live on one node of a Redis Cluster.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

from selfmend.resilience.breaker.storage import (
    Claim,
    Moved,
    Recorded,
    SharedSettings,
    Snapshot,
    State,
    Window,
)

PREFIX = "selfmend:breaker:"
_SCRIPTS = Path(__file__).parent


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says Redis could not be reached or did not answer in time."""
    return isinstance(error, (ConnectionError, TimeoutError))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _snapshot(fields: list[Any]) -> Snapshot:
    return _parsed(*(_text(field) for field in fields[:4]))


@lru_cache(maxsize=1024)
def _parsed(state: str, version: str, since: str, settings_version: str) -> Snapshot:
    """One Snapshot per distinct reply: a closed breaker returns the same fields step after
    step, and parsing them again is most of the Python a step costs."""
    return Snapshot(State(state), int(version), float(since), int(settings_version))


def _fields(reply: Any) -> list[str]:
    """A script's reply: one string of fields joined by ``|``."""
    return _text(reply).split("|")


class _Script:
    """A Lua script run by its digest, loaded again when Redis has forgotten it (a restart,
    ``SCRIPT FLUSH``). Leaner than redis-py's ``Script`` on the path every call takes."""

    def __init__(self, client: Any, file: str) -> None:
        self.client = client
        self.source = (_SCRIPTS / file).read_text()
        self.digest: str | None = None  # loaded on first use: no connection at start

    def __call__(self, keys: tuple[str, ...], *args: Any) -> Any:
        if self.digest is None:
            self.digest = self.client.script_load(self.source)
        try:
            return self.client.evalsha(self.digest, len(keys), *keys, *args)
        except NoScriptError:
            self.digest = self.client.script_load(self.source)
            return self.client.evalsha(self.digest, len(keys), *keys, *args)


class RedisStorage:
    shared = True

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._record = _Script(client, "record.lua")
        self._move = _Script(client, "move.lua")
        self._claim = _Script(client, "claim_probe.lua")
        self._keys = lru_cache(maxsize=4096)(self._name_keys)

    def _name_keys(self, name: str) -> tuple[str, str, str]:
        tagged = f"{self.prefix}{{{name}}}"
        return tagged, f"{tagged}:calls", f"{tagged}:failing"

    def read(self, name: str) -> Snapshot:
        fields = self.client.hmget(
            self._keys(name)[0], "state", "version", "since", "settings_version"
        )
        defaults = ("closed", "0", "0", "0")
        return _snapshot([d if f is None else f for f, d in zip(fields, defaults, strict=True)])

    def record(
        self,
        name: str,
        version: int,
        process: str,
        window_size: int,
        *,
        successes: int = 0,
        failed: bool = False,
    ) -> Recorded:
        reply = _fields(
            self._record(
                self._keys(name), version, successes, "1" if failed else "0", process, window_size
            )
        )
        snapshot, kind = _parsed(*reply[:4]), reply[4]
        if kind == "window":
            return Recorded(snapshot, Window(int(reply[5]), int(reply[6]), int(reply[7])))
        if kind == "probe":
            return Recorded(snapshot, probe_successes=int(reply[5]))
        return Recorded(snapshot)

    def move(self, name: str, state: State, version: int, to: State, now: float) -> Moved:
        reply = _fields(self._move(self._keys(name), str(state), version, str(to), repr(now)))
        return Moved(bool(int(reply[4])), _snapshot(reply))

    def claim_probe(self, name: str, version: int, probes: int) -> Claim:
        reply = _fields(self._claim(self._keys(name)[:1], version, probes))
        return Claim(bool(int(reply[4])), _snapshot(reply))

    def publish_settings(self, name: str, base: dict[str, Any]) -> None:
        self.client.hset(self._keys(name)[0], "base", json.dumps(base))

    def settings(self, name: str) -> SharedSettings:
        base, overrides, version = self.client.hmget(
            self._keys(name)[0], "base", "overrides", "settings_version"
        )
        return SharedSettings(
            None if base is None else json.loads(base),
            {} if overrides is None else json.loads(overrides),
            0 if version is None else int(version),
        )

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        key = self._keys(name)[0]
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, "overrides", json.dumps(overrides))
            pipe.hincrby(key, "settings_version", 1)
            pipe.execute()
        return self.settings(name)
