"""The series the HTTP patterns read, derived from an exporter's standard metrics scrape by scrape.

A histogram and a counter are running totals since the service started; a pattern asks about
now. So each scrape is compared with the previous one: the interval's latency is the p95 of its
bucket deltas (interpolated within a bucket as Prometheus' ``histogram_quantile`` does), its
error ratios the 5xx and 4xx shares of its counter deltas. Only the p95 is emitted, unlabelled
but for ``instance``: the HTTP patterns read ``http.request_ms`` with no label filter, so a p50
or p99 under a ``quantile`` label would be mixed into their aggregates. An interval with no
request has no latency and no ratio, so nothing is emitted; one with requests and no error has
a ratio of 0.

All the children of a metric (per handler, method, status) are summed: the patterns judge the
service. A child that counts from 0 again (its ``_created`` changed, or a value went down: the
service restarted) contributes what it shows, all of it new.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence

from selfmend.collect.exporter_file import Exporter
from selfmend.http_status import status_class

Point = tuple[str, Mapping[str, str], float]
"""One scraped sample: its name, labels and value."""
Child = frozenset[tuple[str, str]]
"""A metric's child: its labels (a histogram's without ``le``)."""

LATENCY_QUANTILE = 0.95


class HttpSeries:
    """The HTTP series of one scrape target. It keeps the previous scrape's cumulative values in
    the process, as the Redis collector keeps its hit counters: the first scrape, and the first
    after the target's exporter changed, only set the baseline."""

    def __init__(self, exporters: Sequence[Exporter]) -> None:
        self.exporters = exporters
        self._previous: _Scrape | None = None

    def derive(self, families: Collection[str], points: Iterable[Point]) -> dict[str, float | None]:
        """``http.request_ms``, ``http.error_ratio`` and ``http.client_error_ratio`` since the
        previous scrape; None for one that cannot be told (no request, or no such metric).
        ``families`` are the scrape's metric names: a labelled metric no request has reached
        yet has a name and no sample, and already sets the baseline."""
        by_name: dict[str, list[Point]] = defaultdict(list)
        for point in points:
            by_name[point[0]].append(point)
        exporter = next((e for e in self.exporters if _measured_in(e, families)), None)
        if exporter is None:
            self._previous = None
            return {}
        scrape = _Scrape(exporter, by_name)
        previous, self._previous = self._previous, scrape
        if previous is None or previous.exporter != exporter:
            return {}
        latency = histogram_quantile(LATENCY_QUANTILE, scrape.bucket_deltas(previous))
        if latency is not None and exporter.unit == "seconds":
            latency *= 1000
        requests, server_errors, client_errors = scrape.status_deltas(previous)
        return {
            "http.request_ms": latency,
            "http.error_ratio": server_errors / requests if requests else None,
            "http.client_error_ratio": client_errors / requests if requests else None,
        }


def _measured_in(exporter: Exporter, families: Collection[str]) -> bool:
    """Whether the scrape has the exporter's histogram or counter (a counter's family is
    named without ``_total``)."""
    counter = exporter.counter
    return exporter.histogram in families or (
        counter is not None and (counter in families or counter.removesuffix("_total") in families)
    )


class _Scrape:
    """An exporter's cumulative values in one scrape, each child with its ``_created`` time."""

    def __init__(self, exporter: Exporter, by_name: Mapping[str, list[Point]]) -> None:
        self.exporter = exporter
        self.buckets: dict[Child, dict[float, float]] = defaultdict(dict)
        self.requests: dict[Child, float] = {}
        self.created: dict[tuple[str, Child], float] = {}
        if exporter.histogram:
            for _, labels, value in by_name.get(f"{exporter.histogram}_bucket", ()):
                child = frozenset((k, v) for k, v in labels.items() if k != "le")
                self.buckets[child][float(labels["le"])] = value
            self._read_created(by_name, exporter.histogram)
        if exporter.counter:
            for _, labels, value in by_name.get(exporter.counter, ()):
                self.requests[frozenset(labels.items())] = value
            self._read_created(by_name, exporter.counter.removesuffix("_total"))

    def _read_created(self, by_name: Mapping[str, list[Point]], metric: str) -> None:
        for _, labels, value in by_name.get(f"{metric}_created", ()):
            self.created[(metric, frozenset(labels.items()))] = value

    def _restarted(self, before: _Scrape, metric: str, child: Child) -> bool:
        key = (metric, child)
        return key in self.created and self.created[key] != before.created.get(key)

    def bucket_deltas(self, before: _Scrape) -> dict[float, float]:
        """The interval's observations per upper bound, cumulative, over every child."""
        total: dict[float, float] = defaultdict(float)
        for child, buckets in self.buckets.items():
            earlier = before.buckets.get(child, {})
            restarted = self._restarted(before, str(self.exporter.histogram), child) or any(
                value < earlier.get(bound, 0) for bound, value in buckets.items()
            )
            for bound, value in buckets.items():
                total[bound] += value if restarted else value - earlier.get(bound, 0)
        return total

    def status_deltas(self, before: _Scrape) -> tuple[float, float, float]:
        """The interval's requests, server errors (5xx) and client errors (4xx)."""
        metric = str(self.exporter.counter).removesuffix("_total")
        requests = server_errors = client_errors = 0.0
        for child, value in self.requests.items():
            earlier = before.requests.get(child, 0.0)
            restarted = self._restarted(before, metric, child) or value < earlier
            delta = value if restarted else value - earlier
            requests += delta
            status = _status_class(dict(child), self.exporter.status_labels)
            server_errors += delta if status == 5 else 0
            client_errors += delta if status == 4 else 0
        return requests, server_errors, client_errors


def _status_class(labels: Mapping[str, str], names: Sequence[str]) -> int | None:
    """The hundreds of the status in the first of ``names`` present: 5 for ``"503"`` and for
    ``"5xx"``; None when no label holds a status."""
    return status_class(next((labels[name] for name in names if name in labels), ""))


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of cumulative bucket counts by upper bound, as Prometheus'
    ``histogram_quantile`` computes it: linear within the bucket the rank falls in, the first
    bucket starting at 0, the highest finite bound when the rank falls in ``+Inf``. None without
    observations or without a ``+Inf`` bucket."""
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts: list[float] = []
    for bound in bounds:  # a scrape mid-update may leave a bucket below the one before
        counts.append(max(buckets[bound], counts[-1] if counts else 0.0))
    if counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    index = bisect.bisect_left(counts, rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, below = (0.0, 0.0) if index == 0 else (bounds[index - 1], counts[index - 1])
    return start + (bounds[index] - start) * (rank - below) / (counts[index] - below)
