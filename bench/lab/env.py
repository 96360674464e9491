"""Every database, Redis DB and folder the lab uses, taken from ``tests/resources.py`` by slot
(``SELFMEND_TEST_SLOT``), and the environment each process is started with.

The lab claims the slot like a test run, so a lab and a ``make test`` never share Redis DBs or
databases; ``resources.release()`` drops and empties them all at exit.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from tests import resources

LEARN_WARM_UP_SECONDS = 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LabEnv:
    folder: Path
    store_url: str
    shop_db_url: str
    cache_url: str  # the shop's cache Redis, which selfmend monitors, warms and flushes
    shop_broker_url: str  # the shop's own Celery broker
    broker_url: str  # selfmend's broker, results and push buffer / shared state
    results_url: str
    state_url: str
    service_port: int
    dependency_port: int

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def dependency_url(self) -> str:
        return f"http://127.0.0.1:{self.dependency_port}"

    @classmethod
    def take(cls) -> LabEnv:
        resources.claim_slot()
        return cls(
            folder=resources.temp_folder("lab"),
            store_url=resources.fresh_database("lab_store"),
            shop_db_url=resources.fresh_database("lab_shop"),
            cache_url=resources.empty_redis("app"),
            shop_broker_url=resources.empty_redis("side_broker"),
            broker_url=resources.empty_redis("broker"),
            results_url=resources.empty_redis("results"),
            state_url=resources.empty_redis("state"),
            service_port=free_port(),
            dependency_port=free_port(),
        )

    def selfmend(self) -> dict[str, str]:
        """What the README's "Running it" and "Configuration" ask of a user, with the intervals
        compressed so a fault's loop fits minutes, not hours. Nothing here is tuned to a fault:
        no pattern, threshold or detector is set."""
        return {
            **os.environ,
            "SELFMEND_HOME": str(self.folder / "home"),
            "SELFMEND_STORE_URL": self.store_url,
            "SELFMEND_BROKER_URL": self.broker_url,
            "SELFMEND_RESULT_BACKEND": self.results_url,
            "SELFMEND_REDIS_URL": self.state_url,
            "SELFMEND_MODE": "auto",
            "SELFMEND_MONITOR_POSTGRES_URLS": self.shop_db_url,
            "SELFMEND_MONITOR_REDIS_URLS": self.cache_url,
            "SELFMEND_MONITOR_CELERY_BROKER_URL": self.shop_broker_url,
            "SELFMEND_MONITOR_CELERY_QUEUES": "celery",
            "SELFMEND_PROMETHEUS_TARGETS": f"{self.service_url}/metrics",
            "SELFMEND_CACHE_REDIS_URL": self.cache_url,
            "SELFMEND_COLLECT_INTERVAL": "5",
            "SELFMEND_ANALYZE_INTERVAL": "10",
            "SELFMEND_COOLDOWN_SECONDS": "120",
            "SELFMEND_RETRY_SECONDS": "120",
            "SELFMEND_SETTLE_SECONDS": "15",
            "SELFMEND_VERIFY_WINDOW_SECONDS": "20",
            "SELFMEND_TASK_CHECK_INTERVAL": "30",
            # The conservative start a user shortens for a new install: learned patterns watch a
            # series this long (default 30 min) before alarming; the run's warm-up covers it.
            "SELFMEND_LEARN_WARM_UP_SECONDS": str(LEARN_WARM_UP_SECONDS),
        }

    def service(self) -> dict[str, str]:
        """The shop's processes: the same SELFMEND_* (the client reads them) and its own."""
        return {
            **self.selfmend(),
            "SHOP_DB_URL": self.shop_db_url,
            "SHOP_BROKER_URL": self.shop_broker_url,
            "SHOP_DEPENDENCY_URL": self.dependency_url,
            "SHOP_PORT": str(self.service_port),
        }
