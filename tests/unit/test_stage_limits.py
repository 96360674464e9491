"""Every stage has a soft and a hard time limit under the broker's visibility timeout, a limit
that does not fit is refused when the app is created, and a stage that reaches its soft limit
logs one line and ends with its open transaction rolled back."""

from __future__ import annotations

import pytest
import structlog
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import func, select

from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.tables import samples
from workers.app import STAGES, create_app
from workers.limits import StageTask


def stage_tasks(app: Celery) -> dict[str, object]:
    app.loader.import_default_modules()
    return {stage: app.tasks[f"selfmend.{stage}"] for stage in STAGES}


@pytest.mark.parametrize("visibility", [3600.0, 5.0])
def test_every_stage_has_time_limits_below_the_visibility_timeout(tmp_path, visibility):
    settings = Settings(
        home=tmp_path,
        visibility_timeout_seconds=visibility,
        settle_seconds=0.5,
        verify_window_seconds=1.0,
    )
    for stage, task in stage_tasks(create_app(settings)).items():
        assert isinstance(task, StageTask), stage
        assert 0 < task.soft_time_limit < task.time_limit < visibility, stage


def test_a_stage_limit_set_in_the_settings_is_used(tmp_path):
    app = create_app(Settings(home=tmp_path, stage_time_limits={"analyze": 600}))
    analyze = stage_tasks(app)["analyze"]
    assert (analyze.soft_time_limit, analyze.time_limit) == (600, 660)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"analyze": 3500}, r"analyze: a soft limit of 3500 s \(hard 3850 s\).*visibility_timeout"),
        ({"analyze": 0}, "analyze: a soft limit of 0 s"),
        ({"analyse": 60}, "no stage named 'analyse'"),
    ],
)
def test_a_limit_that_does_not_fit_is_refused_when_the_app_is_created(tmp_path, limits, message):
    with pytest.raises(ConfigurationError, match=message):
        create_app(Settings(home=tmp_path, stage_time_limits=limits))


def test_a_stage_at_its_soft_limit_logs_once_and_leaves_nothing_half_written(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    app = Celery("limits-test", task_cls=StageTask, set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="selfmend.slow_stage", soft_time_limit=1)
    def slow_stage() -> dict:
        with store.engine.begin() as connection:  # the stage's one transaction
            store.samples.insert([Sample(series="shop.orders", ts=1_000.0, value=1.0)], connection)
            raise SoftTimeLimitExceeded()  # as the pool raises it at the soft limit

    with structlog.testing.capture_logs() as logged:
        result = slow_stage.apply()

    assert result.state == "IGNORED"
    assert [(entry["event"], entry["task"]) for entry in logged] == [
        ("stage.soft_time_limit", "selfmend.slow_stage")
    ]
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(samples)).scalar_one() == 0
    store.close()
