"""Prometheus collector: scrape a text-format endpoint, parsed by prometheus_client's parser.

Every scraped sample is stored under its own name; the standard HTTP metrics of a known
exporter (``exporters.toml``) also become the series the HTTP patterns read (``http_series``).
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from selfmend.collect.base import samples_at
from selfmend.collect.exporter_file import Exporter, read_exporters
from selfmend.collect.http_series import HttpSeries, Point
from selfmend.models import SERIES_NAME, Sample


class PrometheusCollector:
    name = "prometheus"

    def __init__(
        self, url: str, timeout: float = 5.0, exporters: Sequence[Exporter] | None = None
    ) -> None:
        """``exporters``: the HTTP metrics mapping; the shipped one when not given."""
        self.url = url
        self.timeout = timeout
        self.instance = urlsplit(url).netloc
        self.http = HttpSeries(read_exporters(None) if exporters is None else exporters)

    def collect(self) -> list[Sample]:
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
            body = response.read().decode("utf-8")
        return self.read(body)

    def read(self, body: str, ts: float | None = None) -> list[Sample]:
        """The samples of one scrape's text: each one scraped, and the HTTP series since the
        previous scrape. NaN and infinite values, and names no series may have, are skipped."""
        now = time.time() if ts is None else ts
        families = list(text_string_to_metric_families(body))
        points: list[Point] = [
            (point.name, point.labels, point.value)
            for family in families
            for point in family.samples
        ]
        labels = {"instance": self.instance}
        return [
            Sample(series=name, ts=now, value=value, labels={**point_labels, **labels})
            for name, point_labels, value in points
            if math.isfinite(value) and SERIES_NAME.match(name)
        ] + samples_at(now, self.http.derive({family.name for family in families}, points), labels)
