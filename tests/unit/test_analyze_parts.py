"""An analyze pass saves its series in parts: one that fails part-way keeps what it saved, and
the next pass scores only the rest, ending where an unbroken pass does."""

import numpy as np
import pytest

from selfmend.config import Settings
from selfmend.detect import streaming
from selfmend.models import Sample
from selfmend.system import System

SERIES = 5


def batch(start: float, seed: int) -> list[Sample]:
    values = np.random.default_rng(seed).normal(50, 2, (SERIES, 40))
    return [
        Sample(series=f"app.metric_{i}", ts=start + j, value=float(values[i, j]))
        for i in range(SERIES)
        for j in range(40)
    ]


def states(system: System) -> dict[int, dict]:
    cursors = system.store.samples.cursors()
    return system.store.samples.detector_states([cursor.id for cursor in cursors])


def run_passes(tmp_path, fail_second_part: bool) -> System:
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db")
    system = System.from_settings(settings, patterns=())
    system.store.samples.insert(batch(1_700_000_000.0, seed=1))
    system.analyzer.run(now=1_700_000_040.0)
    system.store.samples.insert(batch(1_700_000_040.0, seed=2))
    if fail_second_part:
        save, calls = system.store.samples.save_analysis, []

        def second_part_lost(*args):
            calls.append(1)
            if len(calls) == 2:
                raise OSError("disk full")
            save(*args)

        system.store.samples.save_analysis = second_part_lost
        with pytest.raises(OSError):
            system.analyzer.run(now=1_700_000_080.0)
        system.store.samples.save_analysis = save
        report = system.analyzer.run(now=1_700_000_080.0)
        assert report.series == SERIES - 2  # the first part's two series were saved
    else:
        system.analyzer.run(now=1_700_000_080.0)
    system.store.samples.insert(batch(1_700_000_080.0, seed=3))
    system.analyzer.run(now=1_700_000_120.0)
    return system


def test_a_pass_that_fails_part_way_keeps_the_saved_part_and_scores_the_rest_again(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(streaming, "SAVE_EVERY", 2)
    broken = run_passes(tmp_path / "broken", fail_second_part=True)
    clean = run_passes(tmp_path / "clean", fail_second_part=False)
    assert states(broken) == states(clean)
