"""The remediation path without Celery: what the store and the executor cost per incident.

    python -m bench.remediation_core [--incidents 600] [--postgres URL]

In this process, on a fresh store: remediations one after the other, then verifications of
them (samples fed every 20 ms, as in ``bench.remediation``), then remediations from four
threads at once. What ``bench.remediation`` adds to these is Celery's own cost.
"""

from __future__ import annotations

import argparse
import logging
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from bench.remediation import feed, fresh_postgres, open_incidents, settings_for
from selfmend.system import System
from tests import resources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=600)
    parser.add_argument("--postgres", help="the store on PostgreSQL, e.g. postgresql://...:5432")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    folder = resources.temp_folder("bench-remediation-core")
    store_url = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{folder}/store.db"
    count = args.incidents
    system = System.from_settings(settings_for(folder, store_url, "redis://unused", 2 * count))
    stop = threading.Event()
    threading.Thread(target=feed, args=(system, stop), daemon=True).start()
    try:
        ids = open_incidents(system, count, 0)
        began = time.perf_counter()
        done = [system.executor.remediate(incident) for incident in ids]
        remediated = time.perf_counter() - began
        time.sleep(system.verifier.first_check_after)
        began = time.perf_counter()
        for remediation in done:
            system.verifier.verify(remediation)
        verified = time.perf_counter() - began
        ids = open_incidents(system, count, count)
        began = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(system.executor.remediate, ids))
        threaded = time.perf_counter() - began
    finally:
        stop.set()
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, store "
        f"{store_url.split(':')[0]}, {count} incidents"
    )
    print(f"remediate, one thread: {1000 * remediated / count:.2f} ms each")
    print(f"verify, one thread:    {1000 * verified / count:.2f} ms each")
    print(f"remediate, 4 threads:  {count / threaded:,.0f}/s")


if __name__ == "__main__":
    main()
