"""Detector state through the store: passes split between two workers end where one worker does."""

import numpy as np

from selfmend.config import Settings
from selfmend.models import Sample
from selfmend.system import System


def batches(start: float) -> list[list[Sample]]:
    values = np.random.default_rng(9).normal(50, 2, 600)
    values[450:] += 30  # a shift in the third batch
    return [
        [Sample(series="app.latency_ms", ts=start + i, value=float(values[i])) for i in part]
        for part in np.array_split(np.arange(600), 3)
    ]


def final_state(tmp_path, workers: int) -> dict:
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db")
    analyzers = [System.from_settings(settings, patterns=()).analyzer for _ in range(workers)]
    store = System.from_settings(settings, patterns=()).store
    for number, batch in enumerate(batches(start=1_700_000_000.0)):
        store.samples.insert(batch)
        analyzers[number % workers].run(now=batch[-1].ts)  # workers take turns: caches go stale
    (cursor,) = store.samples.cursors()
    return cursor.detector_state


def test_two_workers_taking_turns_leave_the_same_detector_as_one(tmp_path):
    one = final_state(tmp_path / "one", workers=1)
    two = final_state(tmp_path / "two", workers=2)
    assert one["model"] == two["model"]
    assert one["model"]["detector"] == "stream"
