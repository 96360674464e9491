"""The default detector: calibrated members that fail differently, fused by a rule not fitted
to any data.

Members, each a Detector of its own:

- ``spike``: a point far from what was expected, for its level or its hour of the day;
- ``counts``: the same on ``log(1 + value)``, while the series has no negative value, for
  bursty counts and noise that grows with the level;
- ``shift``: a run of residuals on one side (EWMA and CUSUM), for shifts and slow drifts.

Each reports a surprise, ``-log10`` of its tail probability on this series. The fusion is the
largest, less ``log10`` of the number of members (Bonferroni: a tail probability for having
looked several times), then one event, one alarm. No weight is learned, so nothing in it
was fitted to NAB or any other corpus.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Self

import numpy as np

from selfmend.detect.calibrated import CalibratedDetector
from selfmend.detect.shift import ShiftDetector
from selfmend.detect.spike import SpikeDetector


class EnsembleDetector(CalibratedDetector):
    name = "ensemble"

    def _new_arrays(self) -> dict[str, np.ndarray]:
        # a member's own alarm (when it restarts its run) is where the fusion's alarm is
        looks = 1 + self.params.counts + self.params.shift
        p = self.params.model_copy(update={"alarm": self.params.alarm + math.log10(looks)})
        self.members: dict[str, CalibratedDetector] = {"spike": SpikeDetector(p)}
        if p.counts:
            self.members["counts"] = SpikeDetector(p.model_copy(update={"log": True}))
        if p.shift:
            self.members["shift"] = ShiftDetector(p)
        return {
            f"{label}.{key}": array
            for label, member in self.members.items()
            for key, array in member.arrays.items()
            if key != "output"  # members report to the fusion, which holds
        }

    def _bind(self) -> None:
        """Point each member at this detector's arrays (after they were copied or loaded)."""
        self.members = {label: copy.copy(member) for label, member in self.members.items()}
        for label, member in self.members.items():
            member.arrays = {
                key: self.arrays.get(f"{label}.{key}", array)
                for key, array in member.arrays.items()
            }

    def _surprise(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        found = np.zeros(len(values))
        for member in self.members.values():
            np.maximum(found, member._surprise(timestamps, values), out=found)
        return np.maximum(found - math.log10(len(self.members)), 0.0)

    def band(self) -> tuple[float, float] | None:
        return self.members["spike"].band()

    def clone(self) -> Self:
        twin = super().clone()
        twin._bind()
        return twin

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = super().from_state(state)
        detector._bind()
        return detector
