"""The built-in pattern catalogue: its size and reach, its actions, and the page made from it."""

from collections import Counter

import pytest

from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.catalogue_doc import DOC_FILE, render
from selfmend.detect.patterns import Pattern
from selfmend.models import series_key
from selfmend.remedy.actions.breaker_force import BreakerForceParams
from selfmend.remedy.actions.breaker_thresholds import BreakerThresholdsParams
from selfmend.remedy.actions.cache_warm import CacheWarmParams
from selfmend.remedy.actions.celery_pool import CeleryPoolParams
from selfmend.remedy.actions.celery_pool_restart import PoolRestartParams
from selfmend.remedy.actions.celery_rate_limit import RateLimitParams
from selfmend.remedy.actions.celery_revoke import RevokeParams
from selfmend.remedy.actions.postgres_blockers import BlockerParams
from selfmend.remedy.actions.postgres_connection_holders import HolderParams
from selfmend.remedy.actions.postgres_index import IndexRequest
from selfmend.remedy.actions.postgres_sessions import SessionParams
from selfmend.remedy.actions.set_control import SetControlParams
from selfmend.remedy.base import with_labels
from selfmend.system import System

LABELLED = series_key(
    "any.series",
    {"database": "shop", "task": "shop.pay", "worker": "w1@a", "breaker": "payments"},
)
PARAMS = {
    "set_control": SetControlParams,
    "celery_pool": CeleryPoolParams,
    "pg_cancel_queries": SessionParams,
    "pg_end_idle_transactions": SessionParams,
    "pg_connection_holders": HolderParams,
    "pg_end_blockers": BlockerParams,
    "celery_rate_limit": RateLimitParams,
    "celery_revoke_stuck": RevokeParams,
    "celery_pool_restart": PoolRestartParams,
    "cache_warm": CacheWarmParams,
    "pg_create_index": IndexRequest,
    "breaker_force": BreakerForceParams,
    "breaker_thresholds": BreakerThresholdsParams,
}


def test_at_least_fifty_built_in_patterns_with_unique_names():
    names = [pattern.name for pattern in BUILTIN_PATTERNS]
    assert len(names) >= 50
    assert [name for name, count in Counter(names).items() if count > 1] == []


def test_the_catalogue_reaches_every_area_and_error_logs():
    areas = Counter(
        metric.series.split(".")[0]
        for pattern in BUILTIN_PATTERNS
        for metric in pattern.condition.metric_conditions()
    )
    logs = [p for p in BUILTIN_PATTERNS if p.condition.kind == "log"]
    composites = [p for p in BUILTIN_PATTERNS if p.condition.kind in ("all", "any")]

    for area in ("redis", "postgres", "celery", "http", "process"):
        assert areas[area] >= 5, area
    assert len(logs) >= 15
    assert len(composites) >= 3


def test_every_default_action_exists_and_its_params_are_valid(tmp_path):
    catalogue = System.from_settings(Settings(home=tmp_path)).catalogue
    with_actions = [pattern for pattern in BUILTIN_PATTERNS if pattern.actions]

    assert with_actions
    for pattern in with_actions:
        for action in pattern.actions:
            assert action.name in catalogue, pattern.name
            # A "{label}" parameter is what the incident's series brings, e.g. its worker.
            params = with_labels(action.name, action.params, LABELLED, limit=90.0)
            PARAMS[action.name].model_validate(params)


@pytest.mark.parametrize("pattern", BUILTIN_PATTERNS, ids=lambda pattern: pattern.name)
def test_each_built_in_validates_again_from_its_own_dump(pattern):
    assert Pattern.model_validate(pattern.model_dump()) == pattern


# What the demo and the integration tests rely on.
DEMO_PATTERNS = {
    "slow_queries": (
        "p95(db.query_ms, 60s) > learned",
        'set_control key="db.query_cache" value=true',
    ),
    "cache_hit_ratio_low": (
        "mean(cache.hit_ratio, 30s) < learned",
        'cache_warm max_keys=1000 or set_control key="cache.warm" value=true',
    ),
    "redis_hit_ratio_low": (
        "mean(redis.hit_ratio, 60s) < learned",
        'set_control key="cache.warm" value=true',
    ),
    "db_connections_high": (
        "min(postgres.connections, 30s) > 40",
        'pg_connection_holders database="{database}" idle_in_transaction_seconds=60 '
        'max_sessions=10 or set_control key="db.pool_size" delta=-20 minimum=5',
    ),
    "method_not_found": ("ERROR log line matching /method.*not found/ within 120s", None),
    "celery_queue_backlog": (
        "min(celery.queue_depth, 60s) > learned(floor=100)",
        "celery_pool grow=1",
    ),
}


@pytest.mark.parametrize(("name", "shown"), DEMO_PATTERNS.items())
def test_the_patterns_the_demo_heals_keep_their_conditions_and_fixes(name, shown):
    [pattern] = [pattern for pattern in BUILTIN_PATTERNS if pattern.name == name]
    fix = pattern.describe_fix() if pattern.actions else None
    assert (pattern.condition.describe(), fix) == shown


def test_docs_patterns_md_is_what_the_generator_makes_of_the_catalogue_now():
    assert DOC_FILE.read_text(encoding="utf-8") == render(), (
        "docs/patterns.md is stale: run python -m selfmend.detect.catalogue_doc"
    )


def test_the_page_lists_every_pattern_once():
    page = render()
    for pattern in BUILTIN_PATTERNS:
        assert page.count(f"\n| `{pattern.name}` |") == 1, pattern.name
