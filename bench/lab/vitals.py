"""The web process's ratios and vital signs, pushed every few seconds with ``client.record``:
the series docs/patterns.md says the application measures (``http.error_ratio``,
``http.upstream_error_ratio``, ``process.*``). Ratios are over the interval since the last push,
so a fault shows at once and a fix shows as soon as it works."""

from __future__ import annotations

import os
import threading
import time

from selfmend import client

INTERVAL = 5.0


class Vitals:
    def __init__(self, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._answered = self._server_errors = self._client_errors = 0
        self._calls = self._call_failures = 0
        self._born = time.time()
        self._cpu = (time.monotonic(), time.process_time())

    def answered(self, status: int) -> None:
        with self._lock:
            self._answered += 1
            self._server_errors += status >= 500
            self._client_errors += 400 <= status < 500

    def upstream(self, ok: bool) -> None:
        with self._lock:
            self._calls += 1
            self._call_failures += not ok

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="shop-vitals").start()

    def _loop(self) -> None:
        while True:
            time.sleep(INTERVAL)
            for name, value in self._take().items():
                client.record(name, value, service=self.service)

    def _take(self) -> dict[str, float]:
        with self._lock:
            answered, server, bad = self._answered, self._server_errors, self._client_errors
            calls, failures = self._calls, self._call_failures
            self._answered = self._server_errors = self._client_errors = 0
            self._calls = self._call_failures = 0
        wall, cpu = time.monotonic(), time.process_time()
        figures = {
            "process.rss_bytes": rss_bytes(),
            "process.threads": float(threading.active_count()),
            "process.open_fds": float(len(os.listdir("/proc/self/fd"))),
            "process.cpu_ratio": (cpu - self._cpu[1]) / max(wall - self._cpu[0], 1e-6),
            "process.uptime_seconds": time.time() - self._born,
        }
        self._cpu = (wall, cpu)
        if answered:
            figures["http.error_ratio"] = server / answered
            figures["http.client_error_ratio"] = bad / answered
        if calls:
            figures["http.upstream_error_ratio"] = failures / calls
        return figures


def rss_bytes() -> float:
    with open("/proc/self/statm") as statm:
        return float(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
