"""The standard HTTP metrics of the common Python exporters, scraped as prometheus_client itself
writes them, become the series the HTTP patterns read: the interval's p95 latency, its 5xx and
its 4xx share. The registries below name their histogram and counter as each exporter does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from selfmend.collect.exporter_file import read_exporters
from selfmend.collect.http_series import histogram_quantile
from selfmend.collect.prometheus import PrometheusCollector
from selfmend.models import series_key

INSTANCE = "shop:8000"
URL = f"http://{INSTANCE}/metrics"
HTTP_SERIES = {"http.request_ms", "http.error_ratio", "http.client_error_ratio"}


@dataclass(frozen=True)
class Exporter:
    name: str
    histogram: str
    histogram_labels: tuple[str, ...]
    counter: str
    counter_labels: tuple[str, ...]
    grouped_status: bool = False  # "5xx" rather than "503"


EXPORTERS = [
    Exporter(
        "prometheus-fastapi-instrumentator",
        "http_request_duration_seconds",
        ("handler", "method"),
        "http_requests_total",
        ("handler", "method", "status"),
        grouped_status=True,
    ),
    Exporter(
        "starlette_exporter",
        "starlette_request_duration_seconds",
        ("method", "path", "status_code", "app_name"),
        "starlette_requests_total",
        ("method", "path", "status_code", "app_name"),
    ),
    Exporter(
        "django-prometheus",
        "django_http_requests_latency_seconds_by_view_method",
        ("view", "method"),
        "django_http_responses_total_by_status_view_method",
        ("status", "view", "method"),
    ),
    Exporter(
        "prometheus_flask_exporter",
        "flask_http_request_duration_seconds",
        ("method", "path", "status"),
        "flask_http_request_total",
        ("method", "status"),
    ),
    Exporter(
        "prometheus_client",
        "http_request_duration_seconds",
        ("method", "handler"),
        "http_requests_total",
        ("method", "handler", "code"),
    ),
]


class Service:
    """An application's /metrics: the exporter's histogram and counter in a registry of its own."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            exporter.histogram, "latency", exporter.histogram_labels, registry=self.registry
        )
        self.requests = Counter(
            exporter.counter, "requests", exporter.counter_labels, registry=self.registry
        )

    def serve(self, count: int, seconds: float, status: int) -> None:
        for number in range(count):
            path = ("/cart", "/pay")[number % 2]
            shown = f"{status // 100}xx" if self.exporter.grouped_status else str(status)
            self.latency.labels(*self._values(self.exporter.histogram_labels, path, shown)).observe(
                seconds
            )
            self.requests.labels(*self._values(self.exporter.counter_labels, path, shown)).inc()

    @staticmethod
    def _values(labels: tuple[str, ...], path: str, status: str) -> list[str]:
        given = {"status": status, "status_code": status, "code": status, "method": "GET"}
        return [given.get(label, path) for label in labels]

    def metrics(self) -> str:
        return generate_latest(self.registry).decode()


def http_values(samples) -> dict[str, float]:
    found = {s.series: s for s in samples if s.series in HTTP_SERIES}
    for sample in found.values():
        assert sample.labels == {"instance": INSTANCE}
    return {name: sample.value for name, sample in found.items()}


@pytest.mark.parametrize("exporter", EXPORTERS, ids=[e.name for e in EXPORTERS])
def test_an_exporters_histogram_and_counter_become_p95_and_error_ratios(exporter):
    service = Service(exporter)
    service.serve(40, 8.0, 503)  # before the first scrape: not in the interval
    collector = PrometheusCollector(URL, exporters=read_exporters(None))
    first = collector.read(service.metrics())
    # 100 requests: 90 in the 0.01-0.025 s bucket, 10 in the 0.25-0.5 s one. The p95's rank,
    # 95, falls halfway through the 0.25-0.5 bucket: 0.375 s, as histogram_quantile says.
    service.serve(80, 0.02, 200)
    service.serve(10, 0.02, 404)
    service.serve(5, 0.3, 404)
    service.serve(5, 0.3, 503)

    second = collector.read(service.metrics())

    assert http_values(first) == {}  # the first scrape is the baseline
    assert http_values(second) == pytest.approx(
        {"http.request_ms": 375.0, "http.error_ratio": 0.05, "http.client_error_ratio": 0.15}
    )
    raw = {series_key(s.series, s.labels) for s in second}
    assert any(key.startswith(f"{exporter.histogram}_bucket{{") for key in raw)


def test_a_scrape_with_no_request_since_the_last_emits_no_http_series():
    service = Service(EXPORTERS[0])
    service.serve(10, 0.02, 200)
    collector = PrometheusCollector(URL, exporters=read_exporters(None))
    collector.read(service.metrics())

    again = collector.read(service.metrics())

    assert http_values(again) == {}
    assert any(s.series == "http_requests_total" for s in again)  # the raw series are kept


def test_all_requests_fine_is_an_error_ratio_of_zero():
    service = Service(EXPORTERS[4])
    collector = PrometheusCollector(URL, exporters=read_exporters(None))
    collector.read(service.metrics())
    service.serve(20, 0.02, 200)

    values = http_values(collector.read(service.metrics()))

    assert values["http.error_ratio"] == 0
    assert values["http.client_error_ratio"] == 0


def test_a_restarted_service_counts_from_zero_again():
    """A counter that restarted counts from 0: what it shows is all new. Its ``_created``
    says so even when it is already past the count it had before the restart."""
    before = Service(EXPORTERS[3])
    before.serve(10, 0.02, 200)
    collector = PrometheusCollector(URL, exporters=read_exporters(None))
    collector.read(before.metrics())
    before.serve(90, 0.02, 200)
    collector.read(before.metrics())
    restarted = Service(EXPORTERS[3])
    restarted.serve(150, 0.02, 200)
    restarted.serve(50, 0.02, 503)

    values = http_values(collector.read(restarted.metrics()))

    assert values["http.error_ratio"] == pytest.approx(0.25)
    assert 10 < values["http.request_ms"] <= 25


def test_a_restart_without_created_timestamps_is_seen_as_a_counter_going_down():
    before = Service(EXPORTERS[1])
    before.serve(100, 0.02, 200)
    collector = PrometheusCollector(URL, exporters=read_exporters(None))
    collector.read(before.metrics())
    restarted = Service(EXPORTERS[1])
    restarted.serve(3, 0.02, 200)
    restarted.serve(1, 0.02, 500)
    text = "\n".join(line for line in restarted.metrics().splitlines() if "_created" not in line)

    values = http_values(collector.read(text + "\n"))

    assert values["http.error_ratio"] == pytest.approx(0.25)


def test_a_user_entry_maps_an_exporter_the_shipped_file_does_not_know(tmp_path):
    user_file = tmp_path / "exporters.toml"
    user_file.write_text(
        '[[exporters]]\nname = "shop"\nhistogram = "shop_latency_ms"\nunit = "milliseconds"\n'
        'counter = "shop_calls_total"\nstatus_labels = ["outcome"]\n'
    )
    registry = CollectorRegistry()
    latency = Histogram("shop_latency_ms", "", buckets=(10, 100, 1000), registry=registry)
    calls = Counter("shop_calls_total", "", ["outcome"], registry=registry)
    collector = PrometheusCollector(URL, exporters=read_exporters(user_file))
    collector.read(generate_latest(registry).decode())
    for _ in range(10):
        latency.observe(50)
    calls.labels("200").inc(8)
    calls.labels("502").inc(2)

    values = http_values(collector.read(generate_latest(registry).decode()))

    assert values == pytest.approx(
        {"http.request_ms": 10 + 90 * 0.95, "http.error_ratio": 0.2, "http.client_error_ratio": 0}
    )


def test_the_quantile_is_interpolated_as_prometheus_does():
    inf = float("inf")

    assert histogram_quantile(0.5, {0.1: 0, 0.5: 10, inf: 10}) == pytest.approx(0.3)
    assert histogram_quantile(0.3, {0.1: 4, 0.5: 10, inf: 10}) == pytest.approx(0.1 * 3 / 4)
    assert histogram_quantile(0.5, {0.1: 4, 0.5: 10, inf: 10}) == pytest.approx(0.1 + 0.4 / 6)
    assert histogram_quantile(0.95, {1.0: 5, inf: 10}) == 1.0  # in +Inf: the highest bound
    assert histogram_quantile(0.95, {1.0: 0, inf: 0}) is None
    assert histogram_quantile(0.95, {1.0: 3, 2.0: 5}) is None  # no +Inf bucket
