"""``python -m bench.lab [--quick]``: the fault lab (see ``bench/lab/__init__.py``)."""

from __future__ import annotations

import argparse
import sys

from bench.lab.run import main

parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__)
parser.add_argument(
    "--quick", action="store_true", help="two faults (cache flush, slow dependency), same warm-up"
)
sys.exit(main(parser.parse_args().quick))
