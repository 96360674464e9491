"""How a series' sensitivity moves its detector's alarms on normal data.

    python -m bench.sensitivity [--series 60] [--points 5000] [--nab DIR]

For each detector with a sensitivity mapping, alarms at sensitivity 0.1, 0.5, 2 and 10 against
the default, on noise of four kinds and, when the NAB corpus is there, on NAB's points outside
its labelled anomaly windows: what ``selfmend.sensitivity.TAIL_EXPONENT`` was chosen on.
An alarm counts once per event: a hit within the detector's ``refractory`` (``hold``) points
after the previous one belongs to the same event (``points``: every hit, what the analyze pass
stores).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import noises
from selfmend.detect.ensemble import EnsembleDetector
from selfmend.detect.mad import RollingMAD
from selfmend.detect.stream import StreamDetector

SENSITIVITIES = (0.1, 0.5, 2.0, 10.0)
DETECTORS = {"ensemble": EnsembleDetector, "stream": StreamDetector, "rolling_mad": RollingMAD}
NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
NOISES = noises.some("gaussian", "student_t3", "student_t5", "laplace")

# (timestamps, values, which points are normal)
Stretch = tuple[np.ndarray, np.ndarray, np.ndarray]


def noise(kind: str, series: int, points: int) -> list[Stretch]:
    rng = np.random.default_rng(7)
    timestamps = np.arange(points, dtype=float) * 15.0
    normal = np.ones(points, dtype=bool)
    return [(timestamps, NOISES[kind](rng, points), normal) for _ in range(series)]


def nab(root: Path) -> list[Stretch]:
    from bench.nab.scoring import load_corpus

    stretches = []
    for series in load_corpus(root):
        normal = np.ones(len(series.values), dtype=bool)
        for first, last in series.windows:
            normal[first : last + 1] = False
        stretches.append((series.timestamps, series.values, normal))
    return stretches


def events(hits: np.ndarray, hold: int) -> np.ndarray:
    """The hits that start an event: none in the ``hold`` points before them."""
    at = np.flatnonzero(hits)
    starts = np.zeros_like(hits)
    starts[at[np.diff(at, prepend=-hold - 1) > hold]] = True
    return starts


def relative_alarms(make: Callable[[], object], data: list[Stretch]) -> dict[str, list[float]]:
    """Events and points at each sensitivity, as multiples of the default's."""
    detector = make()
    hold = getattr(detector.params, "refractory", getattr(detector.params, "hold", 0))
    runs = [(make().score_many(ts, values), normal) for ts, values, normal in data]
    counted: dict[str, list[int]] = {"events": [], "points": []}
    for sensitivity in (1.0, *SENSITIVITIES):
        threshold = detector.threshold_at(sensitivity)
        hits = [(scores >= threshold, normal) for scores, normal in runs]
        counted["events"].append(sum(int((events(h, hold) & n).sum()) for h, n in hits))
        counted["points"].append(sum(int((h & n).sum()) for h, n in hits))
    return {kind: [c / max(counts[0], 1) for c in counts[1:]] for kind, counts in counted.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=60)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--nab", type=Path, default=NAB)
    args = parser.parse_args()
    data = {kind: noise(kind, args.series, args.points) for kind in NOISES}
    if (args.nab / "windows.json").exists():
        data["nab_normal"] = nab(args.nab)
    header = "  ".join(f"{s:>5g}" for s in SENSITIVITIES)
    print(f"alarms against sensitivity 1, at sensitivity {header}")
    for name, make in DETECTORS.items():
        for kind, stretches in data.items():
            figures = relative_alarms(make, stretches)
            for counted, ratios in figures.items():
                row = "  ".join(f"{ratio:5.2f}" for ratio in ratios)
                print(f"{name:12} {kind:11} {counted:7} {row}")


if __name__ == "__main__":
    main()
