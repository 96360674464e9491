"""What importing the client costs the application, against prometheus_client in the same run.

    python -m bench.client_import [--runs 15]

Each run is a fresh interpreter with ``-X importtime``; the figure is the import's cumulative
time from its last line, and the modules it loaded. The two imports alternate, so a busy
moment of the machine falls on both; the ratio of the medians is the figure that counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

IMPORTS = {
    "selfmend.client": "from selfmend import client",
    "prometheus_client": "import prometheus_client",
}


def measure(statement: str) -> tuple[float, int]:
    """Milliseconds the import took, and how many modules it added to a bare interpreter."""
    code = (
        f"import sys; before = set(sys.modules); {statement}; print(len(set(sys.modules) - before))"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    last = done.stderr.strip().splitlines()[-1]  # "import time: self | cumulative | name"
    return int(last.split("|")[1]) / 1000, int(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    modules: dict[str, int] = {}
    for _ in range(args.runs):
        for name, statement in IMPORTS.items():
            elapsed, modules[name] = measure(statement)
            times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    for name in IMPORTS:
        print(f"{name}: {median[name]:.1f} ms median of {args.runs}, {modules[name]} modules")
    ratio = median["selfmend.client"] / median["prometheus_client"]
    print(f"client import: {ratio:.2f}x prometheus_client's")
    print(json.dumps({"median_ms": median, "modules": modules, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
