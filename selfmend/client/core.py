"""The client the application holds: validates what it records, reads live settings, and
builds the cache, breakers and writer on first use. ``selfmend.client`` is its light front.

Nothing here migrates or waits on selfmend: the store and Redis are opened lazily, records go to
the ``Sender``'s buffer, and live settings fall back to the last value known.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from selfmend.cache import CacheLoaders
from selfmend.client.live import LiveSettings
from selfmend.client.outcomes import Outcomes
from selfmend.client.quiet import QuietLog
from selfmend.client.sender import Pushes, Sender
from selfmend.client.timing import Timed
from selfmend.collect.push import push_buffer
from selfmend.config import Settings
from selfmend.errors import ConfigurationError, InvalidInput
from selfmend.flags import control_key, is_on
from selfmend.models import LogEvent, Sample
from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from selfmend.resilience.breaker import BreakerRegistry, CircuitBreaker
    from selfmend.resilience.writer import ResilientWriter

F = TypeVar("F", bound=Callable[..., Any])


class Client:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        buffer: Pushes | None = None,
        control_ttl: float = 1.0,
        max_buffered: int = 100_000,
    ) -> None:
        self.settings = settings
        self.store = store or Store.from_url(
            settings.resolved_store_url,
            migrate=False,
            timeouts=DatabaseTimeouts.from_settings(settings),
        )
        self.quiet = QuietLog()
        self.outcomes = Outcomes()
        # Before the sender: its flusher thread reports the settings read from its first pass.
        self.live = LiveSettings(self.store.controls, ttl=control_ttl, quiet=self.quiet)
        self.sender = Sender(
            buffer or push_buffer(settings, self.store),
            batch_size=settings.push_batch_size,
            every=settings.push_flush_seconds,
            max_buffered=max_buffered,
            before_send=self._before_send,
            quiet=self.quiet,
        )

    @property
    def dropped(self) -> int:
        """Items dropped, oldest first, while more than ``max_buffered`` waited to be sent."""
        return self.sender.dropped

    def record(self, name: str, value: float, ts: float | None = None, **labels: str) -> None:
        """Buffer one sample; raises ``InvalidInput`` naming the field if it is malformed."""
        try:
            sample = Sample(
                series=name,
                ts=time.time() if ts is None else ts,
                value=value,
                labels={key: str(label) for key, label in labels.items()},
            )
        except ValidationError as error:
            first = error.errors()[0]
            raise InvalidInput(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        self.sender.add(sample.model_dump())

    def log_line(self, level: str, message: str, logger: str = "") -> None:
        event = LogEvent(ts=time.time(), level=level, message=message[:4000], logger=logger[:200])
        self.sender.add({"kind": "log", **event.model_dump()})

    def timed(self, name: str, **labels: str) -> Timed:
        """A context manager and decorator recording the milliseconds it took as ``name``."""
        return Timed(self.record, name, labels)

    def outcome(self, kind: str, status: int | str, ms: float | None = None, **labels: str) -> None:
        """Count one request of ``kind`` (``"http"``) that ended with ``status`` (``503`` or
        ``"5xx"``); each send then records ``<kind>.error_ratio`` and
        ``<kind>.client_error_ratio`` for the interval's requests. With ``ms``, its duration is
        recorded as ``<kind>.request_ms``."""
        shown = {key: str(label) for key, label in labels.items()}
        self.outcomes.count(kind, status, shown)
        if ms is not None:
            self.record(f"{kind}.request_ms", ms, **shown)

    def flush(self, timeout: float = 10.0) -> int:
        """Have everything recorded so far sent now, waiting ``timeout`` at most; returns how
        many items were sent. The flusher thread sends, never the caller."""
        return self.sender.flush(timeout)

    def _before_send(self) -> None:
        self._record_hit_ratio()
        self._report_breakers()
        self._report_settings_read()
        self._record_outcomes()

    def _report_settings_read(self) -> None:
        """The live settings the application asked for since the last report: new keys at
        once, the rest once a minute. set_control changes only a setting some application
        reads; one nobody reads would change nothing."""
        keys = self.live.keys_to_report()
        if keys:
            self.sender.add({"kind": "settings_read", "ts": time.time(), "keys": keys})

    def _report_breakers(self) -> None:
        """Each breaker's calls since the last send, as the series its patterns read
        (``selfmend/resilience/breaker/stats.py``); counted in the process, sent from here."""
        if "breakers" in self.__dict__:
            self.breakers.report(self.record)

    def _record_outcomes(self) -> None:
        """The error ratios of the requests ``outcome`` counted since the last send."""
        for name, ratio, labels in self.outcomes.ratios():
            self.record(name, ratio, **labels)

    def _record_hit_ratio(self) -> None:
        """The cache's hit ratio since the last send, the series cache_hit_ratio_low reads."""
        ratio = self.cache.hit_ratio() if "cache" in self.__dict__ else None
        if ratio is not None:
            self.record("cache.hit_ratio", ratio)

    @cached_property
    def cache(self) -> CacheLoaders:
        """The application's cache, read through ``cached`` and filled by its loaders."""
        if not self.settings.cache_redis_url:
            raise ConfigurationError(
                "cache_loader and cached need the application's cache Redis: set "
                "SELFMEND_CACHE_REDIS_URL"
            )
        import redis

        index = redis.Redis.from_url(self.settings.redis_url) if self.settings.redis_url else None
        cache = redis.Redis.from_url(self.settings.cache_redis_url)
        return CacheLoaders(cache, self.control, index)

    def cache_loader(self, pattern: str, ttl: int = 300) -> Callable[[F], F]:
        """Register a loader for the keys of ``pattern`` (``"product:{id}"``), called with the
        pattern's fields as keyword arguments when a key is missing or selfmend warms it."""

        def register(load: F) -> F:
            self.cache.register(pattern, load, ttl)
            return load

        return register

    def cached(self, key: str) -> Any:
        return self.cache.get(key)

    @cached_property
    def breakers(self) -> BreakerRegistry:
        """The application's circuit breakers, their state shared by every process of the
        deployment: in Redis when ``SELFMEND_REDIS_URL`` is set, else in the store."""
        from selfmend.resilience.breaker import registry_for

        return registry_for(self.settings, self.store)

    def breaker(self, name: str, **options: Any) -> CircuitBreaker:
        """The circuit breaker named ``name``; ``options`` are its settings (``BreakerSettings``:
        ``failure_threshold=5``, ``reset_timeout=30``...), ``ignore`` and ``fallback``."""
        return self.breakers.get(name, **options)

    def writer(self, engine_or_url: Engine | str) -> ResilientWriter:
        """A resilient writer for the application's database, logging heals in selfmend's
        store; the model step is on when ``SELFMEND_WRITER_MODEL_URL`` is set."""
        from selfmend.resilience.writer import ResilientWriter, namer_from_settings

        # The model gets its own breaker: a model that is down costs one call per reset timeout.
        model = namer_from_settings(self.settings, breaker=self.breaker("selfmend.writer.model"))
        timeouts = DatabaseTimeouts.from_settings(self.settings)
        return ResilientWriter(engine_or_url, self.store, model=model, timeouts=timeouts)

    def control(self, key: str, default: Any = None) -> Any:
        """A live setting, cached for ``control_ttl`` seconds; the last value known (or
        ``default``) when the store cannot be read."""
        return self.live.get(key, default)

    def flag(self, name: str, default: bool = False, unit: str | int | None = None) -> bool:
        """Whether feature ``name`` is on (for ``unit``, a user or tenant, when it is on for a
        share of them). A stored value that is no flag is logged and counts as ``default``."""
        value = self.control(control_key(name), default)
        try:
            return is_on(name, value, unit)
        except InvalidInput as error:
            self.quiet.warning(
                f"flag:{name}", f"selfmend client: flag {name!r} is malformed", error
            )
            return default

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (``timeout`` at most) and stop the flusher thread."""
        if "cache" in self.__dict__:
            self.cache.close()
        self.sender.close(timeout)
