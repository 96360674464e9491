"""A service's series judged together: a combination never seen is found, normal moments are not."""

import time
import tomllib

import numpy as np
import pytest

from selfmend.config import Settings
from selfmend.detect.analyze import SERVICE_PATTERN
from selfmend.detect.multivariate import ServiceForest
from selfmend.detect.pattern_file import parse_patterns
from selfmend.models import IncidentStatus, Sample
from selfmend.system import System

ROWS = 240


def shop(seed: int, broken: bool = False) -> dict[str, list[tuple[float, float]]]:
    """Requests over two daily-like cycles, and CPU that follows them; ``broken``: the newest
    minute has CPU at its usual peak while requests are at their low."""
    rng = np.random.default_rng(seed)
    ts = np.arange(ROWS) * 60.0
    requests = 50 + 40 * np.sin(2 * np.pi * np.arange(ROWS) / 120) + rng.normal(0, 2, ROWS)
    cpu = 0.1 + 0.01 * requests + rng.normal(0, 0.02, ROWS)
    if broken:
        requests[-1], cpu[-1] = requests.min(), cpu.max()
    return {
        'app.requests{service="shop"}': list(zip(ts, requests, strict=True)),
        'app.cpu{service="shop"}': list(zip(ts, cpu, strict=True)),
    }


def test_normal_moments_are_not_anomalous():
    forest = ServiceForest()
    verdicts = [forest.judge(shop(seed)) for seed in range(10)]
    assert not any(v.anomalous for v in verdicts)


def test_a_combination_never_seen_is_anomalous_and_names_the_series_that_moved():
    verdict = ServiceForest().judge(shop(0, broken=True))
    assert verdict.anomalous
    assert set(verdict.deviations) == set(shop(0))


def test_too_little_history_or_a_single_series_gives_no_verdict():
    windows = shop(0)
    assert ServiceForest().judge({key: points[:20] for key, points in windows.items()}) is None
    only_one = dict(list(windows.items())[:1])
    assert ServiceForest().judge(only_one) is None


def test_rows_need_every_series_and_keep_each_buckets_last_value():
    keys, rows = ServiceForest(bucket_seconds=60).rows(
        {"a": [(0.0, 1.0), (30.0, 2.0), (60.0, 3.0)], "b": [(10.0, 9.0)]}
    )
    assert keys == ["a", "b"]
    assert rows.tolist() == [[2.0, 9.0]]  # the second minute has no value of b


# Patterns that name the shop's series (and never hold), so only the forest judges them here.
QUIET = parse_patterns(
    tomllib.loads("""
[[patterns]]
name = "absurd_load"
severity = "low"
condition = { kind = "any", of = [
    { series = "app.requests", aggregate = "max", window = 60, op = ">", threshold = 1e9 },
    { series = "app.cpu", aggregate = "max", window = 60, op = ">", threshold = 1e9 },
] }
why = "never: keeps the per-series detector off these series."
"""),
    "test patterns",
)


@pytest.fixture
def system(tmp_path):
    settings = Settings(home=tmp_path, mode="auto", multivariate_services=["shop"])
    return System.from_settings(settings, patterns=QUIET)


def test_the_analyzer_opens_one_service_incident_and_resolves_it_when_the_service_is_normal(system):
    now = time.time()
    start = now - ROWS * 60.0

    def store(windows):
        system.store.samples.insert(
            [
                Sample(
                    series=key.split("{")[0],
                    ts=start + ts,
                    value=float(value),
                    labels={"service": "shop"},
                )
                for key, points in windows.items()
                for ts, value in points
            ]
        )

    store(shop(0, broken=True))
    report = system.analyzer.run(now=now)
    service = [system.store.incidents.get(i) for i in report.new_incidents]
    assert [(i.pattern, i.target) for i in service] == [
        (SERVICE_PATTERN, 'service{service="shop"}')
    ]
    assert "moved most" in service[0].root_cause
    normal = shop(1)
    store({key: [(ts + 60.0, v) for ts, v in points[-1:]] for key, points in normal.items()})
    system.analyzer.run(now=now + 60)
    assert system.store.incidents.get(service[0].id).status is IncidentStatus.RESOLVED
