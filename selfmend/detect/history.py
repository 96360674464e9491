"""The analyze stage's learned bands: each learned condition's band on each series it reads,
learned from the series' own past windows and kept for ``learn.relearn`` seconds.

Hours of samples are read only for the series learned conditions name, in one query for every
condition due at once, and at most once per ``relearn`` per process: a pass between relearnings
reads no history at all. The incidents open over that history are read in one more query: the
windows of a series during one of them are not its usual behaviour (``faults``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from selfmend.detect.baseline import Band, BandReader, Stretch
from selfmend.detect.conditions import MetricCondition
from selfmend.store import Store
from selfmend.store.incidents import Incident


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
        by_series = faults(self.store.incidents.open_since(since))
        for text, condition in zip(due, conditions, strict=True):
            # History ends where the current window starts: a fault does not teach itself.
            until = now - condition.window
            bands = {}
            for key, points in windows(condition.series, since).items():
                if not condition.selects(key):
                    continue
                past = [p for p in points if p[0] <= until]
                band = condition.learned_band(past, until, by_series.get(key, ()))
                if band is not None:
                    bands[key] = band
            self._learned[text] = _Learned(now, bands)


def faults(incidents: Iterable[Incident]) -> dict[str, list[Stretch]]:
    """Series key → the stretches an incident was open on it, from the onset of its signal (the
    start of the window it held over) to its close; an open one lasts on.

    A series is on an incident when it is the incident's own or one of its members (a symptom
    grouped under a root cause). Incidents of every pattern count: whichever pattern judged the
    series abnormal, its windows then are not its usual behaviour for any condition on it. Kept
    in, a fault lasting over 1 % of the history lifts the 0.99 edge to its own level and hides
    its next occurrence for hours.

    Not chosen: leaving out each window whose own aggregate crossed the limit in force then.
    That limit was learned from the windows before it, so finding it means learning the band
    again for every window, from history older than the one read. And it never lets go: once a
    lasting change (a release) puts a series past its limit, every later window is left out,
    the band never learns the new level, and the series alarms, or warms up, for good. An
    incident ends: it clears, or a person closes it, and the windows after it are learned again.
    """
    found: dict[str, list[Stretch]] = {}
    for incident in incidents:
        stop = math.inf if incident.closed_at is None else incident.closed_at
        opened = incident.opened_at
        starts = {incident.series_key: opened} if incident.series_key else {}
        for member in incident.evidence.get("members", []):
            target = member["target"]
            starts[target] = min(member.get("onset", opened), starts.get(target, opened))
        for key, start in starts.items():
            found.setdefault(key, []).append((start, stop))
    return found
