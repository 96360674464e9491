"""The circuit breaker the application wraps its calls with: ``call``, a decorator, a context
manager (``guard``), and the same for ``async def`` functions.

In the closed state a success makes no storage round trip of its own: it is counted in the
process and sent with the process's next trip. A failure (or a slow call) is sent at once, in
one trip that adds the pending successes to the window, then the failure, and returns the
state. A process whose view of the shared state is older than ``sync_seconds`` renews it
before its next call, by a trip that also sends the pending successes, and a window's worth
of pending successes is sent at once; so a healthy call makes one trip at most, and most make
none. While the breaker is open, calls make no trip; a half-open probe is recorded as it ends
(two trips: its slot, its outcome), and the forced states count nothing.

What the buffering costs, in staleness: a process that keeps calling learns that another
process opened the breaker within ``sync_seconds``, and the other processes' windows see its
successes at most ``sync_seconds`` late (a process that stops calling sends them with its next
call). The window stays exact as far as each process's calls go, in their order: successes
are added before the failure that follows them. Successes pending when a process exits are
lost; that costs only successes, so at worst the failure rate looks a little higher.

No lock is held while the protected call runs, so concurrent callers never queue behind one
another. Each call is also counted in the process (``stats.py``: a short lock, no trip) for the
series the client sends with its next push.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import structlog

from selfmend.errors import CircuitOpen, ConfigurationError, is_interruption
from selfmend.resilience.breaker.circuit import Circuit
from selfmend.resilience.breaker.events import Announcer
from selfmend.resilience.breaker.settings import BreakerSettings, with_overrides
from selfmend.resilience.breaker.states import BEHAVIOUR, StorageDown, Ticket
from selfmend.resilience.breaker.stats import CallStats, Record, report
from selfmend.resilience.breaker.storage import BreakerStorage, Snapshot, State

log = structlog.get_logger(__name__)
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class CircuitBreaker:
    """A named breaker over shared state.

    ``ignore``: exception types that are the caller's business, not the service failing (a 404,
    a validation error); they pass through and count as successes. ``fallback``: called with the
    call's arguments instead of raising ``CircuitOpen`` when the breaker refuses a call.
    """

    def __init__(
        self,
        name: str,
        settings: BreakerSettings,
        storage: BreakerStorage,
        *,
        ignore: tuple[type[BaseException], ...] = (),
        fallback: Callable[..., Any] | None = None,
        announcer: Announcer | None = None,
    ) -> None:
        self.name = name
        self.declared = settings
        self.settings = settings
        self.ignore = tuple(ignore)
        self.fallback = fallback
        self.circuit = Circuit(name, storage, announcer or Announcer())
        self.stats = CallStats()
        try:  # a breaker declared at import must not stop the application while Redis is down
            storage.publish_settings(name, settings.model_dump())
        except Exception:
            log.exception("breaker.publish_failed", breaker=name)
        self._settings_version = 0

    @property
    def processes_needed(self) -> int:
        return self.settings.processes_needed(self.circuit.storage.shared)

    @property
    def snapshot(self) -> Snapshot:
        """The shared state as this process sees it now (renewed if over ``sync_seconds``)."""
        return self.circuit.view(self.settings.sync_seconds, self._renew)

    @property
    def state(self) -> State:
        return self.snapshot.state

    @property
    def timeout(self) -> float | None:
        """``timeout_seconds`` as in force now (an operator's override included): sync code
        passes it to the client that calls the dependency, so a shorter one reaches it."""
        return self.settings.timeout_seconds

    def report(self, record: Record) -> None:
        """Record the series of the calls since the last report; none if there were none."""
        interval = self.stats.take()
        if interval is not None:
            state = self.circuit.last_seen.state
            report(record, self.name, interval, state, self.fallback is not None)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function`` through the breaker: its result, its exception, ``CircuitOpen`` or
        the fallback's result when the breaker refuses."""
        try:
            ticket = self._admit()
        except CircuitOpen:
            if self.fallback is None:
                self.stats.refused(0.0, served=False)
                raise
            began, served = time.perf_counter(), False
            try:
                result = self.fallback(*args, **kwargs)
                served = True
            finally:
                self.stats.refused(time.perf_counter() - began, served)
            return result
        began = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            self._settle(ticket, began, error)
            raise
        self._settle(ticket, began, None)
        return result

    async def call_async(
        self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """``call`` for a coroutine function, cut after ``timeout_seconds`` if set; the storage
        steps run in a thread, so the event loop never waits on Redis or the store."""
        try:
            ticket = await asyncio.to_thread(self._admit)
        except CircuitOpen:
            if self.fallback is None:
                self.stats.refused(0.0, served=False)
                raise
            began, served = time.perf_counter(), False
            try:
                fallen = self.fallback(*args, **kwargs)
                result = await fallen if inspect.isawaitable(fallen) else fallen
                served = True
            finally:
                self.stats.refused(time.perf_counter() - began, served)
            return result
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                result = await function(*args, **kwargs)
        except Exception as error:
            await asyncio.to_thread(self._settle, ticket, began, error)
            raise
        await asyncio.to_thread(self._settle, ticket, began, None)
        return result

    def __call__(self, function: F) -> F:
        """Use the breaker as a decorator, on plain and on ``async def`` functions."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(function, *args, **kwargs)

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self.call(function, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    def guard(self) -> Guard:
        """A context manager (``with`` and ``async with``) whose block is the protected call;
        a refused block raises ``CircuitOpen`` (a block has no arguments for a fallback)."""
        return Guard(self)

    def _renew(self, view: Snapshot) -> Snapshot:
        return BEHAVIOUR[view.state].renew(self, view)

    def _admit(self) -> Ticket:
        try:
            view = self.snapshot
            if view.settings_version != self._settings_version:
                self._apply_overrides()
            return BEHAVIOUR[view.state].admit(self, view)
        except CircuitOpen:
            raise
        except Exception as error:  # the storage unreachable: the breaker must not be the outage
            if is_interruption(error):
                raise
            log.exception("breaker.admission_failed", breaker=self.name)
            return Ticket(StorageDown, -1)

    def _settle(self, ticket: Ticket, began: float, error: BaseException | None) -> None:
        """Record how an admitted call ended. A call cancelled or interrupted (an exception
        outside ``Exception``, or the stage's soft time limit) says nothing about the service and
        is not recorded. A call over ``slow_call_seconds`` or ``timeout_seconds`` failed, even
        if it returned."""
        if error is not None and (not isinstance(error, Exception) or is_interruption(error)):
            return
        took = time.perf_counter() - began
        slow, timeout = self.settings.slow_call_seconds, self.settings.timeout_seconds
        answered = error is None or isinstance(error, self.ignore)
        failed = (
            not answered
            or (slow is not None and took > slow)
            or (timeout is not None and took > timeout)
        )
        self.stats.attempted(took, failed, served=answered)
        try:
            ticket.state.settle(self, ticket, failed)
        except Exception as bookkeeping:  # the call's own result matters more than our records
            if is_interruption(bookkeeping):
                raise
            log.exception("breaker.record_failed", breaker=self.name, failed=failed)

    def _apply_overrides(self) -> None:
        """Lay the operators' overrides over the declared settings, as every process does once
        it sees they changed."""
        shared = self.circuit.storage.settings(self.name)
        try:
            self.settings = with_overrides(self.name, self.declared, shared.overrides)
        except ConfigurationError:
            log.exception("breaker.bad_overrides", breaker=self.name, overrides=shared.overrides)
            self.settings = self.declared
        self._settings_version = shared.version


class Guard:
    """One use of a breaker as a context manager."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self._ticket: Ticket | None = None
        self._began = 0.0

    def __enter__(self) -> Guard:
        self._ticket = self._admit()
        self._began = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ticket is not None:
            self.breaker._settle(self._ticket, self._began, error)

    async def __aenter__(self) -> Guard:
        self._ticket = await asyncio.to_thread(self._admit)
        self._began = time.perf_counter()
        return self

    def _admit(self) -> Ticket:
        """A refused block raises ``CircuitOpen`` into the caller: counted as unserved."""
        try:
            return self.breaker._admit()
        except CircuitOpen:
            self.breaker.stats.refused(0.0, served=False)
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ticket is not None:
            await asyncio.to_thread(self.breaker._settle, self._ticket, self._began, error)
