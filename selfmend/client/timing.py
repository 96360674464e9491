"""``timed``: how long a block or a function took, recorded in milliseconds.

Standard library only: the client's front hands these out at import time of the application's
modules (``@client.timed(...)`` on a handler), and nothing is built until the first record.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect


class Timed:
    """A context manager and a decorator recording the milliseconds it enclosed as ``name``,
    also when the block raised: a failed request took its time too.

    As a decorator, each call is timed on its own, at once in as many threads as call it; as a
    context manager, use one per ``with``.
    """

    def __init__(self, record: Callable[..., None], name: str, labels: dict[str, str]) -> None:
        self._record = record
        self.name = name
        self.labels = labels
        self._started = 0.0

    def __enter__(self) -> Timed:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._record(self.name, (time.perf_counter() - self._started) * 1000, **self.labels)

    def _fresh(self) -> Timed:
        return Timed(self._record, self.name, self.labels)

    def __call__(self, function: F) -> F:
        if function.__code__.co_flags & _COROUTINE:

            @functools.wraps(function)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await function(*args, **kwargs)

            return timed_coroutine  # type: ignore[return-value]

        @functools.wraps(function)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return function(*args, **kwargs)

        return timed_call  # type: ignore[return-value]
