"""The analyze pass on real PostgreSQL: its bulk paths (points as binary arrays, states through
``unnest``, anomalies by COPY) must score and save exactly what the SQLite path does."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from selfmend.config import Settings
from selfmend.detect.choice import DEFAULT
from selfmend.models import Sample, series_key
from selfmend.store import Store
from selfmend.store.tables import anomalies, series
from selfmend.system import System
from tests.resources import fresh_database

pytestmark = pytest.mark.integration

SERIES = 12
POINTS_PER_PASS = 60
PASSES = 4
START = 1_800_000_000.0


@pytest.fixture
def postgres_url() -> str:
    url = fresh_database("analyze")
    Store.from_url(url, migrate=True).close()  # as `selfmend db upgrade`: workers wait for it
    return url


def batches() -> list[list[Sample]]:
    """Noise on every series, a level shift on the first four in the last pass; each batch
    written newest first, so the store, not the order of arrival, must put points in order."""
    rng = np.random.default_rng(5)
    values = rng.normal(100, 5, (SERIES, PASSES * POINTS_PER_PASS))
    values[:4, -POINTS_PER_PASS // 2 :] += 60
    found = []
    for number in range(PASSES):
        part = range(number * POINTS_PER_PASS, (number + 1) * POINTS_PER_PASS)
        batch = [
            Sample(
                series=f"app.metric_{i}",
                ts=START + j * 15.0,
                value=float(values[i, j]),
                labels={"host": f"h{i % 3}"},
            )
            for j in part
            for i in range(SERIES)
        ]
        found.append(batch[::-1])
    return found


def analyze(url: str, tmp_path, workers: int) -> tuple[list[dict], list[tuple], dict[str, dict]]:
    """Reports, anomalies and final detector states after every pass, ``workers`` taking turns
    (each finds the other's saved state, never its own warm detectors)."""
    settings = Settings(home=tmp_path, store_url=url, mode="observe")
    systems = [System.from_settings(settings, patterns=()) for _ in range(workers)]
    store: Store = systems[0].store
    reports = []
    for number, batch in enumerate(batches()):
        store.samples.insert(batch)
        report = systems[number % workers].analyzer.run(now=max(s.ts for s in batch))
        reports.append({**report.as_dict(), "new_incidents": len(report.new_incidents)})
    with store.engine.connect() as connection:
        found = connection.execute(
            select(series.c.key, anomalies.c.ts, anomalies.c.value, anomalies.c.score)
            .join(series, series.c.id == anomalies.c.series_id)
            .order_by(series.c.key, anomalies.c.ts)
        ).all()
        states = dict(connection.execute(select(series.c.key, series.c.detector_state)).all())
    for system in systems:
        system.store.close()
    return reports, [tuple(row) for row in found], states


@pytest.mark.parametrize("workers", [1, 2])
def test_postgresql_pass_scores_and_saves_exactly_what_sqlite_does(postgres_url, tmp_path, workers):
    on_sqlite = analyze(f"sqlite:///{tmp_path}/store.db", tmp_path / "sqlite", workers=1)
    on_postgres = analyze(postgres_url, tmp_path / "postgres", workers=workers)
    reports, found, states = on_postgres
    assert reports == on_sqlite[0]
    assert found == on_sqlite[1]
    assert states == on_sqlite[2]
    assert reports[-1]["new_incidents"] >= 1  # the shift was raised, not only stored
    shifted = {series_key(f"app.metric_{i}", {"host": f"h{i % 3}"}) for i in range(4)}
    assert {key for key, *_ in found} >= shifted
    assert all(state["model"]["detector"] == DEFAULT.detector for state in states.values())
