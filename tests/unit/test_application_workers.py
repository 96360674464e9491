"""The application's Celery workers (issue 14): the settings that name their broker, the age of
each worker's longest task, and the learned patterns that see a stuck task and memory that only
grows, with fixes whose bounds reach what the condition saw."""

import random

import pytest

from selfmend.collect.celery_queues import CeleryCollector
from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.errors import ConfigurationError
from selfmend.models import Sample
from selfmend.system import System
from tests.unit.conftest import built_in

NOW = 1_000_000.0
HOUR = 3600.0
NODE = "shop@host"
MIB = 1024 * 1024


def wandering(low: float, high: float, until: float, seconds: float = 6 * HOUR, every=15.0):
    rng = random.Random(14)
    count = int(seconds / every)
    return [(until - (count - index) * every, rng.uniform(low, high)) for index in range(count)]


def push(system: System, series: str, labels: dict[str, str], points) -> None:
    samples = [Sample(series=series, ts=ts, value=value, labels=labels) for ts, value in points]
    system.store.samples.insert(samples)


def fired(system: System) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for match in system.analyzer.matches(NOW):
        found.setdefault(match.pattern.name, []).append(match.target)
    return found


# --- Settings -----------------------------------------------------------------------------------


def test_the_application_broker_is_unset_by_default_and_its_queue_is_celery():
    settings = Settings()
    assert settings.monitor_celery_broker_url is None
    assert settings.monitor_celery_queues == ["celery"]


def test_the_application_broker_and_queues_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_BROKER_URL", "redis://shop:6379/2")
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_QUEUES", "celery, orders")
    settings = Settings()
    assert settings.monitor_celery_broker_url == "redis://shop:6379/2"
    assert settings.monitor_celery_queues == ["celery", "orders"]


def test_a_broker_that_is_not_a_url_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_BROKER_URL", "shop:6379")
    with pytest.raises(ConfigurationError) as raised:
        Settings()
    assert str(raised.value).startswith(
        "SELFMEND_MONITOR_CELERY_BROKER_URL: is not a broker URL; give transport://host"
    )


def test_queues_without_the_broker_they_are_on_are_refused(monkeypatch):
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_QUEUES", "orders")
    with pytest.raises(ConfigurationError, match=r"SELFMEND_MONITOR_CELERY_BROKER_URL.* is unset"):
        Settings()


def test_an_empty_queue_list_is_refused(monkeypatch):
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_BROKER_URL", "redis://shop:6379/2")
    monkeypatch.setenv("SELFMEND_MONITOR_CELERY_QUEUES", " , ")
    with pytest.raises(ConfigurationError, match=r"^SELFMEND_MONITOR_CELERY_QUEUES: "):
        Settings()


# --- The longest task's age -------------------------------------------------------------------


class Probe:
    def __init__(self, running, task_ages: bool) -> None:
        self._running = running
        self.task_ages = task_ages

    def queue_depths(self) -> dict[str, int]:
        return {"celery": 4}

    def running(self):
        return self._running


def by_key(samples) -> dict[tuple[str, tuple], float]:
    return {(s.series, tuple(sorted(s.labels.items()))): s.value for s in samples}


def test_each_application_worker_reports_its_longest_task_and_0_when_none_runs(monkeypatch):
    monkeypatch.setattr("time.time", lambda: NOW)
    probe = Probe({NODE: [NOW - 5, NOW - 300], "idle@host": []}, task_ages=True)

    samples = by_key(CeleryCollector(probe).collect())

    assert samples[("celery.longest_task_seconds", (("worker", NODE),))] == 300
    assert samples[("celery.longest_task_seconds", (("worker", "idle@host"),))] == 0
    assert samples[("celery.active_tasks", ())] == 2
    assert samples[("celery.queue_depth", (("queue", "celery"),))] == 4


def test_selfmends_own_workers_report_no_task_ages():
    probe = Probe({"selfmend@host": [NOW - 900]}, task_ages=False)
    series = {sample.series for sample in CeleryCollector(probe).collect()}
    assert series == {"celery.active_tasks", "celery.queue_depth"}


# --- Stuck tasks --------------------------------------------------------------------------------

WORKER = {"worker": NODE}


def test_a_task_stuck_past_the_workers_usual_longest_fires_on_that_worker(system):
    push(system, "celery.longest_task_seconds", WORKER, wandering(0.0, 2.0, NOW - 120))
    push(
        system,
        "celery.longest_task_seconds",
        WORKER,
        [(t, t - (NOW - 120)) for t in range(int(NOW - 115), int(NOW) + 1, 5)],
    )

    assert fired(system).get("celery_task_stuck") == [
        'celery.longest_task_seconds{worker="shop@host"}'
    ]


def test_a_task_running_under_a_minute_past_the_usual_does_not(system):
    push(system, "celery.longest_task_seconds", WORKER, wandering(0.0, 2.0, NOW - 50))
    push(
        system,
        "celery.longest_task_seconds",
        WORKER,
        [(t, t - (NOW - 50)) for t in range(int(NOW - 45), int(NOW) + 1, 5)],
    )

    assert "celery_task_stuck" not in fired(system)


AGE_PATTERNS = [
    pattern
    for pattern in BUILTIN_PATTERNS
    if any(c.series == "celery.longest_task_seconds" for c in pattern.condition.metric_conditions())
]


@pytest.mark.parametrize("pattern", AGE_PATTERNS, ids=lambda pattern: pattern.name)
def test_revoking_stuck_tasks_reaches_every_task_the_condition_saw(pattern):
    """The action stops tasks older than ``older_than_seconds``: bound to the limit the incident
    crossed, it finds the task the condition saw and stops none within the worker's usual."""
    [condition] = pattern.condition.metric_conditions()
    assert condition.op in (">", ">=") and condition.aggregate == "min"
    for action in pattern.actions:
        assert action.params["older_than_seconds"] == "{limit}"
        assert action.params["destination"] == ["{worker}"]


# --- Memory that only grows ---------------------------------------------------------------------

SLOT = {"worker": NODE, "process": "0"}


def test_a_pool_process_holding_200_mib_over_its_usual_fires_far_under_2_gib(system):
    push(system, "process.rss_bytes", SLOT, wandering(60 * MIB, 80 * MIB, NOW - 180))
    push(system, "process.rss_bytes", SLOT, [(NOW - 175 + 5 * i, 270 * MIB) for i in range(36)])

    assert fired(system).get("process_memory_high") == [
        'process.rss_bytes{process="0",worker="shop@host"}'
    ]


def test_a_process_that_moves_by_tens_of_mib_does_not(system):
    push(system, "process.rss_bytes", SLOT, wandering(60 * MIB, 80 * MIB, NOW - 180))
    push(system, "process.rss_bytes", SLOT, [(NOW - 175 + 5 * i, 150 * MIB) for i in range(36)])

    assert "process_memory_high" not in fired(system)


def test_memory_growth_restarts_the_pool_of_the_worker_it_belongs_to():
    [action] = built_in("process_memory_high").actions
    assert (action.name, action.params) == ("celery_pool_restart", {"destination": ["{worker}"]})
