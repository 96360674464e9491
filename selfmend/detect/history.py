"""The analyze stage's learned bands: each learned condition's band on each series it reads,
learned from the series' own past windows and kept for ``learn.relearn`` seconds.

Hours of samples are read only for the series learned conditions name, in one query for every
condition due at once, and at most once per ``relearn`` per process: a pass between relearnings
reads no history at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from selfmend.detect.baseline import Band, BandReader
from selfmend.detect.conditions import MetricCondition
from selfmend.store import Store


@dataclass(frozen=True)
class _Learned:
    at: float
    bands: dict[str, Band]


class Baselines:
    def __init__(self, store: Store, conditions: Iterable[MetricCondition]) -> None:
        self.store = store
        learned = [condition for condition in conditions if condition.learn is not None]
        self._conditions = {condition.describe(): condition for condition in learned}
        self._learned: dict[str, _Learned] = {}

    def at(self, now: float) -> BandReader:
        """The bands to judge by at ``now``, learning again those older than their relearn."""
        due = [text for text in self._conditions if self._due(text, now)]
        if due:
            self._learn(due, now)
        learned = self._learned

        def band(condition: str, key: str) -> Band | None:
            found = learned.get(condition)
            return found.bands.get(key) if found is not None else None

        return band

    def _due(self, text: str, now: float) -> bool:
        learned = self._learned.get(text)
        if learned is None or now < learned.at:  # a pass for an earlier moment: learn anew
            return True
        learn = self._conditions[text].learn
        return learn is not None and now - learned.at >= learn.relearn

    def _learn(self, due: list[str], now: float) -> None:
        conditions = [self._conditions[text] for text in due]
        since = min(now - c.window - c.learn.history for c in conditions if c.learn)
        windows = self.store.samples.windows_by_name({c.series for c in conditions}, since)
        for text, condition in zip(due, conditions, strict=True):
            # History ends where the current window starts: a fault does not teach itself.
            until = now - condition.window
            bands = {}
            for key, points in windows(condition.series, since).items():
                if not condition.selects(key):
                    continue
                band = condition.learned_band([p for p in points if p[0] <= until], until)
                if band is not None:
                    bands[key] = band
            self._learned[text] = _Learned(now, bands)
