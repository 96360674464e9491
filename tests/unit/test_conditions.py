"""Pattern conditions on their own: aggregates (``rate`` too), coverage, labels, composites."""

import pytest

from selfmend.detect.patterns import CompositeCondition, MetricCondition
from selfmend.models import parse_series_key

NOW = 10_000.0


def points(*values: float, every: float = 10.0) -> list[tuple[float, float]]:
    """Evenly spaced samples, the last one at NOW."""
    start = NOW - every * (len(values) - 1)
    return [(start + index * every, value) for index, value in enumerate(values)]


def reader(windows: dict[str, list[tuple[float, float]]]):
    """What ``store.samples.windows_by_name`` returns, from a dict of series key → points."""

    def read(name: str, since: float) -> dict[str, list[tuple[float, float]]]:
        return {
            key: [(ts, value) for ts, value in series if ts > since]
            for key, series in windows.items()
            if parse_series_key(key)[0] == name
        }

    return read


def values(held) -> dict[str, float]:
    """Each series a condition holds on, with the aggregate that made it hold."""
    return {key: found.value for key, found in held.items()}


def metric(series: str, aggregate: str, op: str, threshold: float, **fields) -> MetricCondition:
    return MetricCondition(
        series=series, aggregate=aggregate, op=op, threshold=threshold, window=60, **fields
    )


def test_rate_is_the_per_second_increase_of_a_counter():
    deadlocks = metric("postgres.deadlocks_total", "rate", ">", 0)
    assert deadlocks.aggregate_of(points(0, 100, 200, 300, 400, 500, 600)) == pytest.approx(10.0)


def test_rate_counts_a_counter_restart_as_an_increase_from_zero():
    evictions = metric("redis.evicted_keys_total", "rate", ">", 0)
    # 100 → 110 (+10), restart → 5 (+5), 5 → 15 (+10): 25 over 30 s.
    assert evictions.aggregate_of(points(100, 110, 5, 15)) == pytest.approx(25 / 30)


def test_rate_condition_fires_on_growth_and_not_on_a_flat_counter():
    deadlocks = metric("postgres.deadlocks_total", "rate", ">", 0)
    flat = {"postgres.deadlocks_total": points(7, 7, 7, 7, 7, 7)}
    grew = {"postgres.deadlocks_total": points(7, 7, 8, 8, 8, 8)}  # one deadlock in 50 s

    assert deadlocks.holding(reader(flat), NOW) == {}
    assert values(deadlocks.holding(reader(grew), NOW)) == {
        "postgres.deadlocks_total": pytest.approx(1 / 50)
    }


def test_a_condition_without_samples_over_half_its_window_does_not_fire():
    backlog = metric("celery.queue_depth", "min", ">", 100)
    short = {"celery.queue_depth": points(500, 500, 500)}  # 20 s of a 60 s window
    enough = {"celery.queue_depth": points(500, 500, 500, 500)}  # 30 s

    assert backlog.evaluate(short["celery.queue_depth"], NOW) is None
    assert backlog.holding(reader(short), NOW) == {}
    assert values(backlog.holding(reader(enough), NOW)) == {"celery.queue_depth": 500}


def test_labels_select_the_series_a_condition_reads():
    idle = metric(
        "postgres.connections_by_state", "min", ">", 5, labels={"state": "idle in transaction"}
    )
    windows = {
        'postgres.connections_by_state{database="shop",state="idle in transaction"}': points(
            9, 9, 9, 9
        ),
        'postgres.connections_by_state{database="shop",state="idle"}': points(50, 50, 50, 50),
    }

    assert list(idle.holding(reader(windows), NOW)) == [
        'postgres.connections_by_state{database="shop",state="idle in transaction"}'
    ]


FRAGMENTED = CompositeCondition(
    kind="all",
    of=[
        metric("redis.mem_fragmentation_ratio", "min", ">", 1.5),
        metric("redis.used_memory_bytes", "min", ">", 100_000_000),
    ],
)


def test_all_fires_on_its_first_series_when_the_others_hold_on_the_same_instance():
    windows = {
        'redis.mem_fragmentation_ratio{instance="a"}': points(2.0, 2.1, 2.0, 2.2),
        'redis.mem_fragmentation_ratio{instance="b"}': points(2.0, 2.1, 2.0, 2.2),
        'redis.used_memory_bytes{instance="a"}': points(5e8, 5e8, 5e8, 5e8),
        'redis.used_memory_bytes{instance="b"}': points(1e6, 1e6, 1e6, 1e6),
    }

    assert values(FRAGMENTED.holding(reader(windows), NOW)) == {
        'redis.mem_fragmentation_ratio{instance="a"}': 2.0
    }


def test_all_does_not_fire_when_another_condition_fails_or_lacks_coverage():
    fragmented = {'redis.mem_fragmentation_ratio{instance="a"}': points(2.0, 2.0, 2.0, 2.0)}
    small = {'redis.used_memory_bytes{instance="a"}': points(1e6, 1e6, 1e6, 1e6)}
    too_new = {'redis.used_memory_bytes{instance="a"}': points(5e8, 5e8)}

    assert FRAGMENTED.holding(reader({**fragmented, **small}), NOW) == {}
    assert FRAGMENTED.holding(reader({**fragmented, **too_new}), NOW) == {}


def test_all_pairs_series_that_share_no_labels():
    stalled = CompositeCondition(
        kind="all",
        of=[
            metric("celery.queue_depth", "min", ">", 10),
            metric("celery.active_tasks", "max", "<=", 1),
        ],
    )
    waiting = {'celery.queue_depth{queue="orders"}': points(40, 41, 42, 43)}
    idle = {"celery.active_tasks": points(1, 1, 0, 1)}
    busy = {"celery.active_tasks": points(1, 6, 6, 6)}

    assert values(stalled.holding(reader({**waiting, **idle}), NOW)) == {
        'celery.queue_depth{queue="orders"}': 40
    }
    assert stalled.holding(reader({**waiting, **busy}), NOW) == {}


def test_any_fires_on_each_series_a_condition_holds_on():
    failing = CompositeCondition(
        kind="any",
        of=[
            metric("http.error_ratio", "mean", ">", 0.05),
            metric("http.request_ms", "p95", ">", 1000),
        ],
    )
    windows = {
        'http.error_ratio{route="/pay"}': points(0.2, 0.3, 0.2, 0.3),
        'http.error_ratio{route="/cart"}': points(0.0, 0.0, 0.0, 0.0),
        'http.request_ms{route="/cart"}': points(1500, 1600, 1700, 1800),
    }

    assert set(failing.holding(reader(windows), NOW)) == {
        'http.error_ratio{route="/pay"}',
        'http.request_ms{route="/cart"}',
    }


def test_composite_describes_its_conditions_and_compresses_every_window():
    assert FRAGMENTED.describe() == (
        "min(redis.mem_fragmentation_ratio, 60s) > 1.5 and "
        "min(redis.used_memory_bytes, 60s) > 100000000"
    )
    assert [c.window for c in FRAGMENTED.compressed(10).of] == [6.0, 6.0]


def test_describe_names_labels_and_keeps_thresholds_exact():
    condition = metric("postgres.xid_age", "min", ">", 1_200_000_000, labels={"database": "shop"})
    assert condition.describe() == 'min(postgres.xid_age{database="shop"}, 60s) > 1200000000'
