"""Detector state through the store: passes split between two workers end where one worker does,
and a pass whose save fails is scored again from the saved state, as if it had never run."""

import numpy as np
import pytest

from selfmend.config import Settings
from selfmend.detect.choice import DEFAULT
from selfmend.models import Sample
from selfmend.system import System


def batches(start: float) -> list[list[Sample]]:
    values = np.random.default_rng(9).normal(50, 2, 600)
    values[450:] += 30  # a shift in the third batch
    return [
        [Sample(series="app.latency_ms", ts=start + i, value=float(values[i])) for i in part]
        for part in np.array_split(np.arange(600), 3)
    ]


def saved_state(system: System) -> dict:
    (cursor,) = system.store.samples.cursors()
    return system.store.samples.detector_states([cursor.id])[cursor.id]


def final_state(tmp_path, workers: int) -> dict:
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db")
    analyzers = [System.from_settings(settings, patterns=()).analyzer for _ in range(workers)]
    system = System.from_settings(settings, patterns=())
    for number, batch in enumerate(batches(start=1_700_000_000.0)):
        system.store.samples.insert(batch)
        analyzers[number % workers].run(now=batch[-1].ts)  # workers take turns: caches go stale
    return saved_state(system)


def test_two_workers_taking_turns_leave_the_same_detector_as_one(tmp_path):
    one = final_state(tmp_path / "one", workers=1)
    two = final_state(tmp_path / "two", workers=2)
    assert one["model"] == two["model"]
    assert one["model"]["detector"] == DEFAULT.detector


def test_a_pass_whose_save_fails_is_scored_again_from_the_saved_state(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db")
    system = System.from_settings(settings, patterns=())
    first, second, third = batches(start=1_700_000_000.0)
    system.store.samples.insert(first)
    system.analyzer.run(now=first[-1].ts)
    system.store.samples.insert(second)

    def lost(*_):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(system.store.samples, "save_analysis", lost)
        with pytest.raises(OSError):
            system.analyzer.run(now=second[-1].ts)  # the detector scored the batch, unsaved
    report = system.analyzer.run(now=second[-1].ts)
    assert report.points == len(second)  # the same points again, not skipped
    system.store.samples.insert(third)
    system.analyzer.run(now=third[-1].ts)
    assert saved_state(system)["model"] == final_state(tmp_path / "clean", workers=1)["model"]
