"""A redis-server of a test's own, on a free loopback port, that the test may stop and start
again without disturbing the shared Redis every other test uses."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis

from .conftest import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server persisting to an append-only file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize",
             "yes", "--dir", str(self.folder), "--appendonly", "yes", "--save", "",
             "--logfile", str(self.folder / "redis.log")],
            check=True,
        )  # fmt: skip
        wait_for(self.answers, timeout=10, every=0.1)

    def answers(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=1).ping()
        except redis.ConnectionError:
            return False

    def shut_down(self) -> None:
        """SHUTDOWN writes the append-only file, as a stop by a supervisor does."""
        with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it goes
            redis.Redis.from_url(self.url).shutdown()
        wait_for(lambda: not self.answers(), timeout=10, every=0.1)

    def restart(self, down_for: float) -> None:
        self.shut_down()
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(self.url).shutdown(nosave=True)
