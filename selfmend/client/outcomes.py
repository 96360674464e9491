"""Request outcomes counted in the process and sent as ratios once per flush.

The application says how each request ended; the client counts under a lock held for the count
alone, and the flusher thread turns the interval's counts into ``<kind>.error_ratio`` (the 5xx
share) and ``<kind>.client_error_ratio`` (the 4xx share) per label set, the series the HTTP
patterns read. An interval with no request sends nothing: it has no ratio.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from selfmend import http_status
from selfmend.errors import InvalidInput

Labels = tuple[tuple[str, str], ...]


def status_class(status: int | str) -> int:
    """The hundreds of an HTTP status: 5 for ``503`` or ``"5xx"``."""
    hundreds = http_status.status_class(status)
    if hundreds is None:
        raise InvalidInput(f"status: must be an HTTP status such as 503 or '5xx'; got {status!r}")
    return hundreds


class Outcomes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, Labels], list[int]] = {}

    def count(self, kind: str, status: int | str, labels: dict[str, str]) -> None:
        """One request of ``kind`` (``"http"``) that ended with ``status``."""
        hundreds = status_class(status)
        key = (kind, tuple(sorted(labels.items())))
        with self._lock:
            counts = self._counts.setdefault(key, [0, 0, 0])  # requests, 5xx, 4xx
            counts[0] += 1
            counts[1] += hundreds == 5
            counts[2] += hundreds == 4

    def ratios(self) -> Iterator[tuple[str, float, dict[str, str]]]:
        """Each (series, ratio, labels) of the requests counted since the last call."""
        with self._lock:
            taken, self._counts = self._counts, {}
        for (kind, labels), (requests, server_errors, client_errors) in taken.items():
            yield f"{kind}.error_ratio", server_errors / requests, dict(labels)
            yield f"{kind}.client_error_ratio", client_errors / requests, dict(labels)
