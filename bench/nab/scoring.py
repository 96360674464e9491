"""NAB scoring, as ``shared/data/README.md`` states it (after NAB's ``sweeper.py``).

Each scored point gets a weight: inside an anomaly window, the scaled sigmoid of its relative
position (earliest is worth most), normalised so the left edge is worth ``tp``; outside, a
negative weight that fades from ``-fp`` right after a window (and is ``-fp`` before the first
window of a file). A window counts once, by its best detection, or ``-fn`` when missed. The
threshold is swept over every distinct score, per profile, for the best corpus total; the total is
normalised between the null detector (0) and the perfect one (100).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROFILES = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
PROBATION_FRACTION = 0.15
PROBATION_MAX = 750


def scaled_sigmoid(y: float) -> float:
    """NAB's A(y): 2 / (1 + e^(5y)) - 1, and -1 beyond three window widths past a window."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass(frozen=True)
class Series:
    """One NAB file: its points and anomaly windows as inclusive index ranges."""

    name: str
    timestamps: np.ndarray  # seconds since the epoch
    values: np.ndarray
    windows: list[tuple[int, int]]

    @property
    def probation(self) -> int:
        return min(math.floor(PROBATION_FRACTION * len(self.values)), PROBATION_MAX)


@dataclass(frozen=True)
class Weights:
    """Per scored point: its window (-1 when outside any), and its sigmoid weight A."""

    window: np.ndarray
    sigmoid: np.ndarray


def point_weights(series: Series) -> Weights:
    """NAB's per-point weights; points in the probation period get window -2 (never scored)."""
    n = len(series.values)
    window = np.full(n, -1, dtype=int)
    sigmoid = np.zeros(n)
    previous: tuple[int, int] | None = None  # right index and width of the last window passed
    starts = {left: (k, right) for k, (left, right) in enumerate(series.windows)}
    current: tuple[int, int, int] | None = None  # window number, left, right
    for i in range(n):
        if current is None and i in starts:
            k, right = starts[i]
            current = (k, i, right)
        if current is not None:
            k, left, right = current
            width = right - left + 1
            window[i] = k
            sigmoid[i] = scaled_sigmoid(-(right - i + 1) / width)
            if i == right:
                previous, current = (right, width), None
        elif previous is None:
            sigmoid[i] = -1.0
        else:
            right, width = previous
            sigmoid[i] = scaled_sigmoid(abs(right - i) / (width - 1))
    window[: series.probation] = -2
    return Weights(window, sigmoid)


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    normalised: float
    true_positives: int
    false_positives: int
    false_negatives: int


@dataclass(frozen=True)
class Gains:
    """Every scored point of a corpus under one profile: its score, what detecting it is worth
    (the window's credit inside a window, the false positive's cost outside) and its window."""

    score: np.ndarray
    gain: np.ndarray
    window: np.ndarray  # corpus-wide window number, -1 outside every window
    n_windows: int
    weights: tuple[float, float, float]


def gains(corpus: list[Series], scores: list[np.ndarray], profile: str) -> Gains:
    tp_weight, fp_weight, _ = PROFILES[profile]
    max_tp = scaled_sigmoid(-1.0)
    points_score, points_gain, points_window = [], [], []
    n_windows = 0
    for series, score in zip(corpus, scores, strict=True):
        weights = point_weights(series)
        scored = weights.window != -2
        inside = weights.window[scored] >= 0
        points_score.append(score[scored])
        points_gain.append(
            np.where(
                inside,
                weights.sigmoid[scored] * tp_weight / max_tp,
                weights.sigmoid[scored] * fp_weight,
            )
        )
        points_window.append(np.where(inside, weights.window[scored] + n_windows, -1))
        n_windows += len(series.windows)
    return Gains(
        np.concatenate(points_score) if points_score else np.zeros(0),
        np.concatenate(points_gain) if points_gain else np.zeros(0),
        np.concatenate(points_window) if points_window else np.zeros(0, dtype=int),
        n_windows,
        PROFILES[profile],
    )


def best_threshold(corpus: list[Series], scores: list[np.ndarray], profile: str) -> ProfileResult:
    """Sweep the threshold down through every distinct score; keep the best corpus total."""
    table = gains(corpus, scores, profile)
    fn_weight = table.weights[2]
    order = np.argsort(-table.score, kind="stable")
    best_gain = np.full(table.n_windows, -fn_weight)
    detected = np.zeros(table.n_windows, dtype=bool)
    total = -fn_weight * table.n_windows
    best = (total, math.inf)
    i = 0
    while i < len(order):
        threshold = table.score[order[i]]
        while i < len(order) and table.score[order[i]] == threshold:
            point = order[i]
            gain, k = table.gain[point], table.window[point]
            if k < 0:
                total += gain
            elif not detected[k] or gain > best_gain[k]:
                total += gain - best_gain[k]
                best_gain[k], detected[k] = gain, True
            i += 1
        if total > best[0]:
            best = (total, threshold)
    return at_threshold(table, profile, float(best[1]))


def normalised(total: float, n_windows: float, profile: str) -> float:
    """NAB's 0-100 scale: the null detector (every window missed) at 0, the perfect one at 100;
    NaN for series with no window."""
    tp_weight, _, fn_weight = PROFILES[profile]
    if not n_windows:
        return math.nan
    null, perfect = -fn_weight * n_windows, tp_weight * n_windows
    return 100.0 * (total - null) / (perfect - null)


def at_threshold(table: Gains, profile: str, threshold: float) -> ProfileResult:
    """The corpus total when every point scoring ``threshold`` or more is a detection: how a
    threshold chosen on other series is judged on these."""
    fn_weight = table.weights[2]
    hits = table.score >= threshold
    outside = hits & (table.window < 0)
    best_gain = np.full(table.n_windows, -fn_weight)
    inside = hits & (table.window >= 0)
    np.maximum.at(best_gain, table.window[inside], table.gain[inside])
    total = float(table.gain[outside].sum() + best_gain.sum())
    found = int((best_gain > -fn_weight).sum()) if table.n_windows else 0
    return ProfileResult(
        profile,
        threshold,
        total,
        normalised(total, table.n_windows, profile),
        found,
        int(outside.sum()),
        table.n_windows - found,
    )


def load_corpus(root: Path) -> list[Series]:
    """Every ``data/<category>/<file>.csv`` under ``root`` with its windows from windows.json."""
    windows = json.loads((root / "windows.json").read_text())
    corpus = []
    for name in sorted(windows):
        timestamps, values = _read_csv(root / "data" / name)
        stamps = [str(t)[:19] for t in timestamps.astype("datetime64[s]")]
        stamps = [s.replace("T", " ") for s in stamps]
        corpus.append(
            Series(
                name,
                timestamps.astype("datetime64[s]").astype(np.int64).astype(float),
                values,
                [_index_range(stamps, start, end) for start, end in windows[name]],
            )
        )
    return corpus


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=None, encoding="utf-8")
    timestamps = np.array([row[0] for row in rows], dtype="datetime64[s]")
    values = np.array([float(row[1]) for row in rows])
    return timestamps, values


def _index_range(stamps: list[str], start: str, end: str) -> tuple[int, int]:
    """Inclusive indices of the points within [start, end], compared on 19 characters."""
    inside = [i for i, stamp in enumerate(stamps) if start[:19] <= stamp <= end[:19]]
    return inside[0], inside[-1]


def score_corpus(
    corpus: list[Series], scores: list[np.ndarray], profiles: Iterable[str] = PROFILES
) -> list[ProfileResult]:
    return [best_threshold(corpus, scores, profile) for profile in profiles]
