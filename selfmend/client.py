"""What the application imports: push metrics and log lines, read live settings.

``record`` validates at once (a bad call fails in the caller, naming the field) and buffers;
a background thread sends the buffer in batches. A batch that cannot be sent stays buffered and
is sent with the next one, up to ``max_buffered`` items.

    from selfmend import client
    client.record("db.query_ms", 12.5, service="shop")
    pool_size = client.control("db.pool_size", 20)
    if client.flag("new_checkout", unit=user_id): ...  # on, off, or on for a share of users

    @client.cache_loader("product:{id}", ttl=300)  # selfmend warms these keys after a flush
    def load_product(id: str) -> dict: ...
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pydantic import ValidationError

from selfmend.cache import CacheLoaders
from selfmend.collect.push import PushBuffer
from selfmend.config import Settings
from selfmend.errors import ConfigurationError, InvalidInput
from selfmend.flags import control_key, is_on
from selfmend.models import LogEvent, Sample
from selfmend.store import Store
from selfmend.system import push_buffer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from selfmend.resilience.breaker import BreakerRegistry, CircuitBreaker
    from selfmend.resilience.writer import ResilientWriter

log = structlog.get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class Client:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        buffer: PushBuffer | None = None,
        control_ttl: float = 1.0,
        max_buffered: int = 100_000,
    ) -> None:
        self.settings = settings
        self.store = store or Store.from_url(settings.resolved_store_url)
        self.buffer = buffer or push_buffer(settings, self.store)
        self.control_ttl = control_ttl
        self.max_buffered = max_buffered
        self.dropped = 0
        self._pending: list[dict[str, Any]] = []
        # Batches a push failed on, resent byte for byte: a push whose reply was lost may have
        # landed, and only the same bytes let the store's digest check store it once.
        self._unsent: list[tuple[str, int]] = []  # (payload, items)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._controls: dict[str, tuple[float, Any]] = {}
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, daemon=True, name="selfmend-client-flush"
        )
        self._flusher.start()

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
        self._enqueue(sample.model_dump())

    def log_line(self, level: str, message: str, logger: str = "") -> None:
        event = LogEvent(ts=time.time(), level=level, message=message[:4000], logger=logger[:200])
        self._enqueue({"kind": "log", **event.model_dump()})

    def _enqueue(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(item)
            full = len(self._pending) >= self.settings.push_batch_size
        if full:
            self.flush()

    def flush(self) -> int:
        """Send everything buffered now, the batches that failed before first; returns how
        many items were sent."""
        with self._send_lock:
            with self._lock:
                items, self._pending = self._pending, []
            size = self.settings.push_batch_size
            batches = self._unsent + [
                (json.dumps(items[start : start + size]), len(items[start : start + size]))
                for start in range(0, len(items), size)
            ]
            self._unsent = []
            sent = 0
            for index, (payload, count) in enumerate(batches):
                try:
                    self.buffer.push(payload)
                except Exception:
                    unsent = batches[index:]
                    log.exception("client.push_failed", unsent=sum(n for _, n in unsent))
                    self._keep_unsent(unsent)
                    break
                sent += count
            return sent

    def _keep_unsent(self, batches: list[tuple[str, int]]) -> None:
        """Hold failed batches for the next flush, within ``max_buffered`` items in all; the
        oldest go first, as the newest say most about the present."""
        with self._lock:
            held = sum(count for _, count in batches) + len(self._pending)
            while batches and held > self.max_buffered:
                _, count = batches.pop(0)
                held -= count
                self.dropped += count
            self._unsent = batches

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.settings.push_flush_seconds):
            self._record_hit_ratio()
            self.flush()

    def _record_hit_ratio(self) -> None:
        """The cache's hit ratio since the last flush, the series cache_hit_ratio_low reads."""
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

        return CacheLoaders(redis.Redis.from_url(self.settings.cache_redis_url), self.control)

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
        return ResilientWriter(engine_or_url, self.store, model=model)

    def control(self, key: str, default: Any = None) -> Any:
        """A live setting, cached for ``control_ttl`` seconds.

        The first read of an unset key stores ``default``, so the operator (and the actions
        that move a setting by a delta) see the value the application is using.
        """
        now = time.monotonic()
        cached = self._controls.get(key)
        if cached and now - cached[0] < self.control_ttl:
            return cached[1]
        missing = object()
        value = self.store.controls.get(key, missing)
        if value is missing:
            self.store.controls.set(key, default, actor="client default")
            value = default
        self._controls[key] = (now, value)
        return value

    def flag(self, name: str, default: bool = False, unit: str | int | None = None) -> bool:
        """Whether feature ``name`` is on (for ``unit``, a user or tenant, when it is on for a
        share of them). A stored value that is no flag is logged and counts as ``default``."""
        value = self.control(control_key(name), default)
        try:
            return is_on(name, value, unit)
        except InvalidInput:
            log.exception("client.bad_flag", flag=name)
            return default

    def close(self) -> None:
        self._stop.set()
        if "cache" in self.__dict__:
            self.cache.close()
        self._record_hit_ratio()
        self.flush()


class LogHandler(logging.Handler):
    """Forward log records (ERROR and above by default) so error-log patterns can match them."""

    def __init__(self, client: Client | None = None, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self._client = client

    def emit(self, record: logging.LogRecord) -> None:
        try:
            (self._client or default_client()).log_line(
                record.levelname, record.getMessage(), record.name
            )
        except Exception:
            self.handleError(record)


_default: Client | None = None
_default_lock = threading.Lock()


def configure(settings: Settings | None = None, **options: Any) -> Client:
    """Set up the process-wide client (read from SELFMEND_* when no settings are given)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = Client(settings or Settings(), **options)
        return _default


def default_client() -> Client:
    with _default_lock:
        existing = _default
    return existing or configure()


def record(name: str, value: float, **labels: str) -> None:
    default_client().record(name, value, **labels)


def control(key: str, default: Any = None) -> Any:
    return default_client().control(key, default)


def flush() -> int:
    return default_client().flush()


def cache_loader(pattern: str, ttl: int = 300) -> Callable[[F], F]:
    return default_client().cache_loader(pattern, ttl)


def cached(key: str) -> Any:
    return default_client().cached(key)


def breaker(name: str, **options: Any) -> CircuitBreaker:
    return default_client().breaker(name, **options)


def writer(engine_or_url: Engine | str) -> ResilientWriter:
    return default_client().writer(engine_or_url)


def flag(name: str, default: bool = False, unit: str | int | None = None) -> bool:
    return default_client().flag(name, default, unit)


atexit.register(lambda: _default and _default.close())
