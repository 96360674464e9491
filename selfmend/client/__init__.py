"""What the application imports: push metrics and log lines, read live settings and flags.

    from selfmend import client
    client.record("db.query_ms", 12.5, service="shop")
    pool_size = client.control("db.pool_size", 20)
    if client.flag("new_checkout", unit=user_id): ...  # on, off, or on for a share of users

    @client.timed("http.request_ms", route="/cart")  # milliseconds, also as `with`
    def cart(request): ...
    client.outcome("http", status=503)  # sent as http.error_ratio once per flush

    @client.cache_loader("product:{id}", ttl=300)  # selfmend warms these keys after a flush
    def load_product(id: str) -> dict: ...

This module imports nothing but the standard library: the process-wide client (``core.Client``)
and what it needs are loaded on the first call, so importing it costs the application about
what ``import prometheus_client`` does. ``record`` validates at once (a bad call fails in the
caller, naming the field) and buffers; one background thread sends. When selfmend's store or
Redis is down, records wait in a bounded buffer and live settings return the last value known:
the application goes on, and hears of it once in its log.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from selfmend.client.sender import FLUSHER_THREAD
from selfmend.client.timing import Timed

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from selfmend.client.core import Client
    from selfmend.config import Settings
    from selfmend.resilience.breaker import CircuitBreaker
    from selfmend.resilience.writer import ResilientWriter

F = TypeVar("F", bound=Callable[..., Any])


class LogHandler(logging.Handler):
    """Forward log records (ERROR and above by default) so error-log patterns can match them.

    The client's own records, and any record logged on its flusher thread, are not forwarded:
    a failing push that fed its own failure back into the buffer would never stop.
    """

    def __init__(self, client: Client | None = None, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self._client = client

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("selfmend.client") or _on_flusher_thread() or _building():
            return
        client = self._client or _default_client(wait=False)
        if client is None:
            return
        try:
            client.log_line(record.levelname, record.getMessage(), record.name)
        except Exception:
            self.handleError(record)


def _on_flusher_thread() -> bool:
    return threading.current_thread().name == FLUSHER_THREAD


def _building() -> bool:
    """Whether this thread is building the process-wide client: a record logged meanwhile
    (by a library the client loads) must not ask for the client being built."""
    return getattr(_this_thread, "building", False)


_default: Client | None = None
_default_lock = threading.Lock()
_this_thread = threading.local()


def configure(settings: Settings | None = None, **options: Any) -> Client:
    """Set up the process-wide client (read from SELFMEND_* when no settings are given)."""
    global _default
    with _default_lock:
        client = _build(settings, options)
        previous, _default = _default, client
    if previous is not None:
        previous.close()
    return client


def default_client() -> Client:
    """The process-wide client, built on the first call by one thread while others wait."""
    return cast("Client", _default_client(wait=True))  # waiting, never None


def _default_client(*, wait: bool) -> Client | None:
    """The process-wide client, built here if it is not yet. Without ``wait``, None while
    another thread builds it: a log handler holds its lock while it emits, and the builder may
    log on its way, so waiting for the builder there could wait for ourselves."""
    global _default
    if _default is not None:
        return _default
    if not _default_lock.acquire(blocking=wait):
        return None
    try:
        if _default is None:
            _default = _build(None, {})
        return _default
    finally:
        _default_lock.release()


def _build(settings: Settings | None, options: dict[str, Any]) -> Client:
    from selfmend.client.core import Client
    from selfmend.config import Settings

    _this_thread.building = True
    try:
        return Client(settings or Settings(), **options)
    finally:
        _this_thread.building = False


def record(name: str, value: float, **labels: str) -> None:
    default_client().record(name, value, **labels)


def timed(name: str, **labels: str) -> Timed:
    """Milliseconds of a block or a function as ``name``; built without the client, so a
    decorated module imports at no cost."""
    return Timed(record, name, labels)


def outcome(kind: str, status: int | str, ms: float | None = None, **labels: str) -> None:
    default_client().outcome(kind, status, ms, **labels)


def control(key: str, default: Any = None) -> Any:
    return default_client().control(key, default)


def flag(name: str, default: bool = False, unit: str | int | None = None) -> bool:
    return default_client().flag(name, default, unit)


def flush(timeout: float = 10.0) -> int:
    return default_client().flush(timeout)


def cache_loader(pattern: str, ttl: int = 300) -> Callable[[F], F]:
    return default_client().cache_loader(pattern, ttl)


def cached(key: str) -> Any:
    return default_client().cached(key)


def breaker(name: str, **options: Any) -> CircuitBreaker:
    return default_client().breaker(name, **options)


def writer(engine_or_url: Engine | str) -> ResilientWriter:
    return default_client().writer(engine_or_url)


def __getattr__(name: str) -> Any:
    """``selfmend.client.Client``, loaded when first asked for."""
    if name == "Client":
        from selfmend.client.core import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


atexit.register(lambda: _default and _default.close())
