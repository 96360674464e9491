"""The streaming detectors' part of an analyze pass: each series' new points scored by its
detector, anomalies stored, and a signal raised once an alarm holds.

Kept apart from the patterns and incidents (``analyze``): this part reads only the shard's own
series and their saved detector states, so it is what sharding spreads across workers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfmend.detect.base import Detector
from selfmend.detect.choice import DetectorChoice, choice_for
from selfmend.detect.correlate import Signal
from selfmend.models import Anomaly, Severity
from selfmend.sensitivity import DEFAULT as DEFAULT_SENSITIVITY
from selfmend.store import Store
from selfmend.store.samples import CursorUpdate, NewPoints, SeriesCursor

ANOMALY_PATTERN = "anomaly"
SAVE_EVERY = 1000  # series per transaction of an analyze pass


@dataclass
class Tally:
    """What a pass scored: series, points and the anomalies among them."""

    series: int = 0
    points: int = 0
    anomalies: int = 0


@dataclass
class _Watch:
    """A series' detector, the last point it scored, and an alarm not yet confirmed or dropped
    (the band it broke holds until it is settled)."""

    until: float
    detector: Detector
    pending: dict[str, Any] | None

    def to_state(self) -> dict[str, Any]:
        return {"model": self.detector.to_state(), "pending": self.pending}


class StreamingPass:
    """Scores new points series by series, keeping each series' detector warm in this process
    between passes."""

    def __init__(
        self,
        store: Store,
        detectors: tuple[DetectorChoice, ...],
        clear_points: int,
        pattern_series: set[str],
    ) -> None:
        self.store = store
        self.detectors = detectors
        self.clear_points = clear_points
        # A series some pattern names is judged by it: its anomalies are stored, no signal.
        self.pattern_series = pattern_series
        # What this process left each series with, by series id: reused while the store's
        # cursor still stands where it left it, so a warm pass reads no saved state.
        self._warm: dict[int, _Watch] = {}

    def run(self, tally: Tally, shard: int, shards: int, signals: list[Signal]) -> None:
        """Score the shard's new points, saving ``SAVE_EVERY`` series a transaction; add the
        signals of each part once it is saved.

        A series' cursor, state and anomalies are saved together, so a pass that fails part-way
        leaves each series saved or as it was, and the next pass scores the rest again. Saving
        in parts lets one worker's save overlap another's scoring: SQLite takes one writer at a
        time, and two workers' whole-pass saves met at the end of every pass.
        """
        pending = self.store.samples.new_points(shard, shards)
        cold = [cursor.id for cursor, _ in pending if not self._warm_for(cursor)]
        saved = self.store.samples.detector_states(cold)
        # Read at every pass, never kept: a change counts from the next pass, in every worker.
        sensitivities = self.store.sensitivities.of_shard(shard, shards)
        for first in range(0, len(pending), SAVE_EVERY):
            part = pending[first : first + SAVE_EVERY]
            signals += self._detect_part(tally, part, saved, sensitivities)

    def _detect_part(
        self,
        tally: Tally,
        pending: list[tuple[SeriesCursor, NewPoints]],
        saved: dict[int, dict[str, Any]],
        sensitivities: dict[int, float],
    ) -> list[Signal]:
        signals: list[Signal] = []
        updates: list[CursorUpdate] = []
        found: list[Anomaly] = []
        for cursor, new in pending:
            watch = self._warm_for(cursor) or self._restore(cursor, saved.get(cursor.id))
            self._warm.pop(cursor.id, None)  # back once scored: a failure leaves it restored
            sensitivity = sensitivities.get(cursor.id, DEFAULT_SENSITIVITY)
            signal = self._detect_series(cursor, watch, new, found, sensitivity)
            if signal is not None:
                signals.append(signal)
            updates.append(CursorUpdate(cursor.id, cursor.key, watch.until, watch.to_state()))
            self._warm[cursor.id] = watch
        self.store.samples.save_analysis(updates, found)
        tally.series += len(pending)
        tally.points += sum(len(new.values) for _, new in pending)
        tally.anomalies += len(found)
        return signals

    def _warm_for(self, cursor: SeriesCursor) -> _Watch | None:
        """This process's watch over the series if the store's cursor still stands where it left
        it; else another worker moved on, or the pass that advanced it was not saved."""
        watch = self._warm.get(cursor.id)
        return watch if watch is not None and watch.until == cursor.analyzed_until else None

    def _restore(self, cursor: SeriesCursor, saved: dict[str, Any] | None) -> _Watch:
        saved = saved or {}
        choice = choice_for(cursor.name, self.detectors)
        return _Watch(
            cursor.analyzed_until, choice.restore(saved.get("model")), saved.get("pending")
        )

    def _detect_series(
        self,
        cursor: SeriesCursor,
        watch: _Watch,
        new: NewPoints,
        found: list[Anomaly],
        sensitivity: float,
    ) -> Signal | None:
        """Score the series' new points and store its anomalies; a signal once one is confirmed.

        Every anomaly is stored, but only one the series has not recovered from raises a
        signal: the default detector alarms on about one point in 10,000 of data that behaves
        as it has (its tail probability), and on a point or a short run that is back in the
        band a moment later nobody needs to be woken. An alarm is pending until the latest
        ``clear_points`` values are all outside the band it broke (a signal) or the latest value
        is back inside (dropped); the pending alarm is kept in the series' saved state across
        passes.

        The threshold is the one for the series' ``sensitivity``; the detector learns the same
        whatever it is, so a change leaves what it learned as it was.
        """
        detector = watch.detector
        before = detector.clone()  # where an alarm's band is read, without restoring again
        timestamps, values = new.timestamps, new.values
        scores = detector.score_many(timestamps, values)
        hits = np.flatnonzero(scores >= detector.threshold_at(sensitivity))
        found += [  # built from the detector's own floats: nothing to validate
            Anomaly.model_construct(
                series=cursor.key,
                ts=float(timestamps[i]),
                value=float(values[i]),
                score=float(scores[i]),
                detector=detector.name,
            )
            for i in hits
        ]
        if watch.pending is None and hits.size and cursor.name not in self.pattern_series:
            watch.pending = _alarm(before, new, scores, hits[0])
        signal, watch.pending = self._confirm(cursor, watch.pending, values)
        watch.until = float(timestamps[-1])
        return signal

    def _confirm(
        self, cursor: SeriesCursor, pending: dict[str, Any] | None, values: np.ndarray
    ) -> tuple[Signal | None, dict[str, Any] | None]:
        """A signal if the pending alarm held, and what is still pending."""
        if pending is None:
            return None, None
        low, high = pending["band"]
        outside = (values < low) | (values > high)
        if not outside[-1]:
            return None, None
        tail = outside[-self.clear_points :]
        if tail.size < self.clear_points or not tail.all():
            return None, pending
        signal = Signal(
            pattern=ANOMALY_PATTERN,
            target=cursor.key,
            severity=Severity.MEDIUM,
            onset=pending["onset"],
            value=pending["value"],
            described=f"{pending['detector']} score {pending['score']:.2f}, still outside "
            f"[{low:.4g}, {high:.4g}]",
            evidence={"band": pending["band"], "score": pending["score"]},
        )
        return signal, None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the detection loop.

    A pass over ten thousand series allocates a hundred thousand containers that outlive it
    (saved states, detectors, their watches), and each batch of survivors sets off another
    collection of the whole heap: a third of a cold pass. What the loop drops, reference
    counting frees at once; the few cycles (database objects) wait for the collector, which
    resumes after the loop.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _alarm(
    before: Detector, new: NewPoints, scores: np.ndarray, first: int
) -> dict[str, Any] | None:
    """The first alarm of the batch, with the band it broke: ``before`` is the detector as it
    was before the batch, taken up to the alarm."""
    before.score_many(new.timestamps[:first], new.values[:first])
    band = before.band()
    if band is None:
        return None
    return {
        "onset": float(new.timestamps[first]),
        "value": float(new.values[first]),
        "score": float(scores[first]),
        "band": list(band),
        "detector": before.name,
    }
