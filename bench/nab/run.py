"""Score selfmend's default detector on NAB-format data: ``python -m bench.nab.run [DATA_DIR]``.

Each series goes through ``selfmend.detect.default_detector`` — the function the workers call —
point by point in time order (``score_many`` scores each point on the points before it), with
the same configuration for every file. Prints the three profiles and the online path's speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.nab.scoring import PROFILES, Series, load_corpus, score_corpus
from selfmend.detect.choice import default_detector

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"
PUBLISHED = {  # on the 33 series in shared/, from its README
    "CAD OSE": (78.4, 75.2, 81.3),
    "ARTime": (77.1, 70.8, 81.2),
    "Numenta HTM": (76.5, 71.5, 80.1),
}


def detect(series: Series) -> np.ndarray:
    detector = default_detector(series.name)
    return detector.score_many(series.timestamps, series.values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    corpus = load_corpus(args.data)
    detect(corpus[0])  # load the compiled kernels outside the timing
    started = time.perf_counter()
    scores = [detect(series) for series in corpus]
    elapsed = time.perf_counter() - started
    points = sum(len(series.values) for series in corpus)
    results = score_corpus(corpus, scores)
    table = Table(title=f"NAB, {len(corpus)} series from {args.data}")
    table.add_column("detector")
    for profile in PROFILES:
        table.add_column(profile, justify="right")
    table.add_row("selfmend", *(f"{r.normalised:.1f}" for r in results), style="bold")
    for name, published in PUBLISHED.items():
        table.add_row(name, *(f"{value:.1f}" for value in published))
    console = Console()
    console.print(table)
    for r in results:
        console.print(
            f"{r.profile}: threshold {r.threshold:.4f}, windows found "
            f"{r.true_positives}/{r.true_positives + r.false_negatives}, "
            f"false positives {r.false_positives}"
        )
    console.print(f"online path: {points:,} points in {elapsed:.2f} s = {points / elapsed:,.0f}/s")


if __name__ == "__main__":
    main()
