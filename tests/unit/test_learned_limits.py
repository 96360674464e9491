"""Learned limits (issue 14): a series judged against its own usual band, after a warm-up, with a
hard threshold a person sets still firing; verification judges against the limit detection
recorded; Redis' server-wide hit ratio quiet while the application reports its own."""

import random
import tomllib

import pytest

from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.pattern_file import parse_patterns
from selfmend.models import Sample, Verdict
from selfmend.system import System
from tests.unit.conftest import built_in

NOW = 1_000_000.0
HOUR = 3600.0
CACHE = 'cache.hit_ratio{service="shop"}'
REDIS = 'redis.hit_ratio{instance="cache:6379"}'


def usual(low: float, high: float, seconds: float, until: float, every: float = 5.0):
    """A series wandering in [low, high], a point every ``every`` seconds up to ``until``."""
    rng = random.Random(14)
    count = int(seconds / every)
    return [(until - (count - index) * every, rng.uniform(low, high)) for index in range(count)]


def push(system: System, key: str, points) -> None:
    name, _, rest = key.partition("{")
    labels = dict(part.split("=") for part in rest.rstrip("}").replace('"', "").split(",") if part)
    system.store.samples.insert(
        [Sample(series=name, ts=ts, value=value, labels=labels) for ts, value in points]
    )


def fired(system: System, now: float = NOW) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for match in system.analyzer.matches(now):
        found.setdefault(match.pattern.name, []).append(match.target)
    return found


def test_a_series_whose_usual_hit_ratio_is_0_75_does_not_fire(system):
    push(system, CACHE, usual(0.73, 0.77, 6 * HOUR, NOW))
    assert "cache_hit_ratio_low" not in fired(system)


def test_the_same_series_dropping_to_0_1_fires_with_its_limit_recorded(system):
    push(system, CACHE, usual(0.73, 0.77, 6 * HOUR, NOW - 60))
    push(system, CACHE, usual(0.09, 0.11, 60, NOW))

    [match] = [m for m in system.analyzer.matches(NOW) if m.pattern.name == "cache_hit_ratio_low"]

    assert match.target == CACHE
    assert match.value == pytest.approx(0.11, abs=0.01)
    [judged] = match.evidence["limits"].values()
    # The median of its 30 s maxima, about 0.76; the limit is a quarter under it, since its
    # usual low edge (about 0.74) is nearer: min(q01, median * (1 - 0.25)).
    assert 0.74 < judged["median"] < 0.77
    assert judged["limit"] == pytest.approx(judged["median"] * 0.75)
    assert judged["history_seconds"] >= 5 * HOUR


def test_a_new_series_does_not_fire_during_its_warm_up(system):
    warm_up = built_in("cache_hit_ratio_low").condition.learn.warm_up
    push(system, CACHE, usual(0.95, 0.97, warm_up / 2, NOW - 60))
    push(system, CACHE, usual(0.09, 0.11, 60, NOW))

    assert "cache_hit_ratio_low" not in fired(system)


def test_a_deployment_may_shorten_the_warm_up_of_patterns_that_set_none(tmp_path):
    settings = Settings(home=tmp_path, learn_warm_up_seconds=600)
    system = System.from_settings(settings, patterns=BUILTIN_PATTERNS)
    push(system, CACHE, usual(0.95, 0.97, 900, NOW - 60))  # under the default, over 600 s
    push(system, CACHE, usual(0.09, 0.11, 60, NOW))

    assert fired(system)["cache_hit_ratio_low"] == [CACHE]
    [pattern] = [p for p in system.patterns if p.name == "cache_hit_ratio_low"]
    assert pattern.condition.learn.warm_up == 600


def test_a_warm_up_a_pattern_chose_is_kept_and_none_outlasts_its_history(tmp_path):
    [chosen, short] = parse_patterns(
        tomllib.loads("""
[[patterns]]
name = "chosen"
severity = "low"
condition = { series = "a", aggregate = "max", window = 30, op = "<", learn = { warm_up = 600 } }
why = "its own warm-up."

[[patterns]]
name = "short"
severity = "low"
condition = { series = "b", aggregate = "max", window = 30, op = "<", learn = { history = 3600 } }
why = "a short history."
"""),
        "test patterns",
    )
    settings = Settings(home=tmp_path, learn_warm_up_seconds=5000)
    system = System.from_settings(settings, patterns=(chosen, short))
    warm_ups = {p.name: p.condition.learn.warm_up for p in system.patterns}
    assert warm_ups == {"chosen": 600, "short": 3600}


def test_a_hard_threshold_a_person_set_fires_whatever_the_band(tmp_path):
    [pattern] = parse_patterns(
        tomllib.loads("""
[[patterns]]
name = "orders_slow"
severity = "high"
condition = { series = "shop.order_ms", aggregate = "p95", window = 60, op = ">", \
threshold = 2000, learn = { floor = 100 } }
why = "a person's limit: orders over 2 s lose customers, however slow they usually are."
"""),
        "test patterns",
    )
    system = System.from_settings(Settings(home=tmp_path), patterns=(pattern,))
    key = 'shop.order_ms{service="shop"}'
    push(system, key, usual(2500, 2600, 6 * HOUR, NOW))  # usually slow: no band would fire
    new = 'shop.order_ms{service="new"}'
    push(system, new, usual(3000, 3100, 120, NOW))  # warming up: no band at all

    assert sorted(fired(system)["orders_slow"]) == sorted([key, new])
    assert pattern.condition.describe() == "p95(shop.order_ms, 60s) > min(learned(floor=100), 2000)"


def test_verify_judges_against_the_limit_the_incident_recorded(system):
    incident, _ = system.store.incidents.open(
        pattern="cache_hit_ratio_low",
        target=CACHE,
        severity="medium",
        series_key=CACHE,
        root_cause="test",
        evidence={
            "value": 0.1,
            "limits": {
                built_in("cache_hit_ratio_low").condition.describe(): {
                    "limit": 0.56,
                    "threshold": None,
                }
            },
        },
    )
    recovered = usual(0.6, 0.62, 30, NOW)  # under 0.8 (the old threshold), over the limit
    still_low = usual(0.3, 0.32, 30, NOW)

    fixed, after = system.verifier._in_band(incident, recovered)
    not_fixed, _ = system.verifier._in_band(incident, still_low)

    assert fixed is Verdict.FIXED
    assert list(after["limits"].values()) == [0.56]
    assert not_fixed is Verdict.NOT_FIXED


def test_redis_hit_ratio_low_is_quiet_while_the_application_reports_its_cache_ratio(system):
    push(system, REDIS, usual(0.9, 0.92, 6 * HOUR, NOW - 120))
    push(system, REDIS, usual(0.2, 0.22, 120, NOW))
    assert fired(system).get("redis_hit_ratio_low") == [REDIS]  # alone, Redis' drop fires

    push(system, CACHE, usual(0.73, 0.77, 300, NOW))
    assert "redis_hit_ratio_low" not in fired(system, NOW + 1)


IDLE_COUNT = "postgres.connections_by_state"
IDLE_LONGEST = "postgres.longest_idle_in_transaction_seconds"


@pytest.mark.parametrize(
    "pattern",
    [p for p in BUILTIN_PATTERNS if any(a.name == "pg_end_idle_transactions" for a in p.actions)],
    ids=lambda pattern: pattern.name,
)
def test_ending_idle_transactions_ends_no_younger_ones_than_the_condition_guarantees(pattern):
    """The action ends sessions idle over ``older_than_seconds``: over what the condition's
    firing guarantees, it finds none and the incident never clears."""
    [condition] = pattern.condition.metric_conditions()
    if condition.series == IDLE_LONGEST:
        assert condition.op in (">", ">=") and condition.aggregate == "min"
        guaranteed = condition.threshold  # the longest idle one was over it all window
    else:
        assert condition.series == IDLE_COUNT
        assert condition.labels == {"state": "idle in transaction"}
        guaranteed = condition.window / 2  # it fires once its samples span half its window
    for action in pattern.actions:
        if action.name == "pg_end_idle_transactions":
            assert action.params["older_than_seconds"] <= guaranteed
