"""The client never hurts the application: importing it is cheap, it never migrates, a store
or Redis that is down costs the application nothing but a line in its log, and no client code
sends, logs or waits under a lock on the application's threads."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time

from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from selfmend.client import Client
from selfmend.client.live import LiveSettings
from selfmend.client.quiet import QuietLog
from selfmend.client.sender import Sender
from selfmend.config import Settings
from selfmend.store import Store

HEAVY = ("sklearn", "numba", "alembic", "numpy", "sqlalchemy", "pydantic", "selfmend.detect")


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_importing_the_client_loads_no_detector_model_or_migration_code():
    done = run_python(
        "import json, sys\nfrom selfmend import client\nprint(json.dumps(sorted(sys.modules)))"
    )
    modules = json.loads(done.stdout)
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert loaded == []


def test_the_client_in_use_never_migrates_nor_loads_detectors_or_alembic(tmp_path):
    done = run_python(
        f"""
        import json, sys
        from selfmend import client
        from selfmend.config import Settings
        c = client.configure(Settings(home={str(tmp_path)!r}, push_flush_seconds=0.05))
        c.record("shop.orders", 1.0)
        print(c.control("db.pool_size", 20))
        c.flush(timeout=2)
        c.close()
        heavy = [m for m in sys.modules if m.split(".")[0] in ("sklearn", "numba", "alembic")]
        settings_only = ("selfmend.detect.choice", "selfmend.detect.params")  # no numpy there
        detectors = [m for m in sys.modules if m.startswith("selfmend.detect.")]
        print(json.dumps(heavy + [m for m in detectors if m not in settings_only]))
        """
    )
    assert done.returncode == 0, done.stderr
    default, loaded = done.stdout.splitlines()
    assert default == "20"  # the store has no tables: the default, and no exception
    assert json.loads(loaded) == []
    engine = Store.from_url(f"sqlite:///{tmp_path / 'store.db'}").engine
    assert inspect(engine).get_table_names() == []  # nothing created by the application


def test_live_settings_fall_back_to_the_last_known_value_and_say_so_once(tmp_path, caplog):
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
    store.controls.set("db.pool_size", 7, actor="test")
    client = Client(Settings(home=tmp_path), store=store, control_ttl=0)
    assert client.control("db.pool_size", 20) == 7
    with store.engine.begin() as connection:  # the store breaks under the application
        connection.exec_driver_sql("DROP TABLE controls")

    with caplog.at_level(logging.WARNING, logger="selfmend.client"):
        readings = [client.control("db.pool_size", 20) for _ in range(50)]
        unknown = client.control("never.read", "fallback")
        flagged = client.flag("new_checkout", unit="u1")
    client.close()

    assert readings == [7] * 50
    assert (unknown, flagged) == ("fallback", False)
    said = [r for r in caplog.records if r.name == "selfmend.client"]
    assert len(said) == 1 and "live settings" in said[0].getMessage()


def test_records_wait_in_the_buffer_while_redis_is_down(tmp_path):
    settings = Settings(home=tmp_path, redis_url="redis://127.0.0.1:1/0", push_batch_size=10)
    client = Client(settings)
    for second in range(95):
        client.record("shop.orders", 1.0, ts=1_000.0 + second)
    assert client.flush(timeout=5) == 0
    assert client.sender.buffered == 95
    client.close(timeout=1)


DEADLOCK = """
import logging, threading, sys
import structlog
from selfmend import client
from selfmend.config import Settings

structlog.configure(logger_factory=structlog.stdlib.LoggerFactory())  # structlog via stdlib

class Down:
    def push(self, payload):
        raise ConnectionError("selfmend is down")

app = client.Client(Settings(home=sys.argv[1], push_batch_size=10), buffer=Down())
logging.getLogger().addHandler(client.LogHandler(app))
logging.getLogger().setLevel(logging.INFO)

def serve(worker):
    for n in range(2000):
        app.record("shop.orders", 1.0, worker=str(worker))
        if n % 100 == 0:
            logging.getLogger("shop").error("order %s failed", n)

threads = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
app.flush(timeout=2)
print(app.sender.buffered + app.dropped)
app.close(timeout=1)
"""


def test_a_failing_push_logged_through_the_applications_handler_never_deadlocks(tmp_path):
    """4 threads record while every push fails; the client's own failure lines reach the root
    logger, where ``LogHandler`` forwards ERROR lines to the client. The old client flushed on
    the caller's thread under a non-reentrant lock, logged the failure there, and the handler
    re-entered flush on the same thread: the application hung."""
    done = subprocess.run(
        [sys.executable, "-c", DEADLOCK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    held = int(done.stdout.strip())
    assert held == 4 * 2000 + 4 * 20  # every record and every application error line


class SlowAndDown:
    """A store that takes ``connect`` seconds to fail, as one dropping packets does."""

    def __init__(self, connect: float) -> None:
        self.connect = connect
        self.tried = 0

    def get(self, key, default=None):
        self.tried += 1
        time.sleep(self.connect)
        raise OperationalError("SELECT", {}, Exception("connection timed out"))

    def set(self, key, value, actor):
        raise AssertionError("never reached")


def test_a_store_that_hangs_is_tried_by_one_thread_once_per_retry_interval():
    """The retry interval runs from the failure's end (a connect timeout longer than the
    interval must not leave every read trying again), and while the store is away the other
    threads return what is known rather than queue on it."""
    store = SlowAndDown(connect=0.3)
    live = LiveSettings(store, ttl=0, quiet=QuietLog(), retry_seconds=0.2)
    assert live.get("flag.new_checkout", False) is False  # tried once, failed after 0.3 s
    assert [live.get("flag.new_checkout", False) for _ in range(20)] == [False] * 20
    assert store.tried == 1

    wait_until = time.monotonic() + 0.25
    while time.monotonic() < wait_until:  # past the retry interval: one thread may try again
        time.sleep(0.01)
    readers = [threading.Thread(target=live.get, args=("db.pool_size", 20)) for _ in range(8)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert store.tried == 2


def test_the_flusher_outlives_a_pass_that_fails_unexpectedly(caplog):
    pushed = []

    class Collects:
        def push(self, payload):
            pushed.append(payload)

    sender = Sender(Collects(), batch_size=10, every=60, max_buffered=100)
    sender.add({"not json": object()})  # no record() makes one; a bug somewhere might
    with caplog.at_level(logging.WARNING, logger="selfmend.client"):
        assert sender.flush(timeout=5) == 0
    sender.add({"series": "shop.orders", "value": 1.0})
    assert sender.flush(timeout=5) == 1
    sender.close()
    assert sender.thread.is_alive() is False and len(pushed) == 1
    assert "a send failed unexpectedly" in caplog.text
