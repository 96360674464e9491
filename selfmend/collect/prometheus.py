"""Prometheus collector: scrape a text-format endpoint, parsed by prometheus_client's parser."""

from __future__ import annotations

import math
import time
import urllib.request
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from selfmend.models import SERIES_NAME, Sample


class PrometheusCollector:
    name = "prometheus"

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self.instance = urlsplit(url).netloc

    def collect(self) -> list[Sample]:
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
            body = response.read().decode("utf-8")
        return parse_exposition(body, instance=self.instance)


def parse_exposition(body: str, *, instance: str, ts: float | None = None) -> list[Sample]:
    """Samples of a Prometheus text exposition; NaN and infinite values are skipped."""
    now = time.time() if ts is None else ts
    samples = []
    for family in text_string_to_metric_families(body):
        for point in family.samples:
            if not math.isfinite(point.value) or not SERIES_NAME.match(point.name):
                continue
            samples.append(
                Sample(
                    series=point.name,
                    ts=now,
                    value=point.value,
                    labels={**point.labels, "instance": instance},
                )
            )
    return samples
