"""Named breakers with per-service settings, over one storage, announcing to one set of
listeners; and the storage and listeners a deployment's Settings call for.

A name gives the same breaker every time in a process; its settings are the registry's
defaults, then the service's own (``services``), then those given where it is declared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.resilience.breaker import store_storage
from selfmend.resilience.breaker.breaker import CircuitBreaker
from selfmend.resilience.breaker.control import BreakerControl
from selfmend.resilience.breaker.events import Announcer, Listener, Transition
from selfmend.resilience.breaker.fallback_storage import FallbackStorage
from selfmend.resilience.breaker.settings import parse_settings
from selfmend.resilience.breaker.stats import Record
from selfmend.resilience.breaker.storage import BreakerStorage
from selfmend.store import Store

log = structlog.get_logger(__name__)


class BreakerRegistry:
    def __init__(
        self,
        storage: BreakerStorage,
        *,
        listeners: Iterable[Listener] = (),
        defaults: Mapping[str, Any] | None = None,
        services: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.storage = storage
        self.announcer = Announcer(listeners)
        self.defaults = dict(defaults or {})
        self.services = {name: dict(options) for name, options in (services or {}).items()}
        for name, options in self.services.items():  # a bad service setting fails at start
            parse_settings(name, {**self.defaults, **options})
        # Operators act on the shared state, never on one process's fallback window.
        shared = storage.primary if isinstance(storage, FallbackStorage) else storage
        self.control = BreakerControl(shared, self.announcer)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        *,
        ignore: tuple[type[BaseException], ...] = (),
        fallback: Callable[..., Any] | None = None,
        **options: Any,
    ) -> CircuitBreaker:
        """The breaker named ``name``, created on first use with these settings, ``ignore``
        and ``fallback``. Asked for again without settings, the same breaker; with other
        settings, refused: one name is one breaker."""
        settings = parse_settings(name, {**self.defaults, **self.services.get(name, {}), **options})
        with self._lock:
            existing = self._breakers.get(name)
            if existing is None:
                existing = self._breakers[name] = CircuitBreaker(
                    name,
                    settings,
                    self.storage,
                    ignore=ignore,
                    fallback=fallback,
                    announcer=self.announcer,
                )
        if options and existing.declared != settings:
            raise ConfigurationError(
                f"breaker {name!r} is already declared with other settings "
                f"({existing.declared.model_dump(exclude_defaults=True)}); use another name"
            )
        return existing

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._breakers)

    def report(self, record: Record) -> None:
        """Record each breaker's series for its calls since the last report (``stats.py``).
        One breaker that cannot report is logged and the rest still do."""
        with self._lock:
            breakers = list(self._breakers.values())
        for breaker in breakers:
            try:
                breaker.report(record)
            except Exception:
                log.exception("breaker.report_failed", breaker=breaker.name)


def shared_storage(settings: Settings, store: Store | None) -> BreakerStorage:
    """Redis when ``SELFMEND_REDIS_URL`` is set, else the store: both shared by every process
    of the deployment. While either cannot be reached, the breakers count in the process."""
    if settings.redis_url:
        from selfmend.resilience.breaker import redis_storage

        return FallbackStorage(
            redis_storage.RedisStorage(breaker_redis(settings.redis_url)),
            redis_storage.unreachable,
        )
    if store is None:
        raise ConfigurationError(
            "breakers are shared through the store when SELFMEND_REDIS_URL is unset: pass a store"
        )
    return FallbackStorage(store_storage.StoreStorage(store.engine), store_storage.unreachable)


def breaker_redis(url: str) -> Any:
    """A Redis client for breakers: short timeouts and a single retry, so that while Redis is
    away a call waits half a second at most for its bookkeeping (redis-py's default retries
    wait about ten), then passes unrecorded."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 1)
    )


def store_listener(store: Store) -> Listener:
    """A listener that writes each transition as a row of ``breaker_events``."""

    def write(transition: Transition) -> None:
        store.breaker_events.append(transition.as_row())

    return write


def registry_for(settings: Settings, store: Store, **options: Any) -> BreakerRegistry:
    """The deployment's registry: shared storage, transitions counted and stored."""
    options.setdefault("services", settings.breakers)
    return BreakerRegistry(
        shared_storage(settings, store), listeners=[store_listener(store)], **options
    )
