"""``python -m bench.lab [--quick]``: the fault lab (see ``bench/lab/__init__.py``)."""

from __future__ import annotations

import argparse
import sys

from bench.lab.run import main

parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__)
parser.add_argument(
    "--quick", action="store_true", help="two faults (cache flush, slow dependency), same warm-up"
)
parser.add_argument(
    "--faults",
    type=lambda names: tuple(name.strip() for name in names.split(",") if name.strip()),
    help="only these faults, comma-separated (e.g. long_query,memory_leak), after the warm-up",
)
arguments = parser.parse_args()
sys.exit(main(arguments.quick, arguments.faults))
