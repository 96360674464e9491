"""The client's sends when a push fails: a batch is sent again byte for byte, so one that did
arrive (its reply was lost) is stored once; the oldest batches give way past max_buffered."""

import pytest
from sqlalchemy import func, select

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.store.tables import samples
from selfmend.system import System, push_buffer


class ReplyLost:
    """A push buffer that stores the first push it is given and then fails as if the reply
    never came back, as a connection dropped after the server ran the command does."""

    def __init__(self, buffer) -> None:
        self.buffer = buffer
        self.lost = 0

    def push(self, payload: str) -> None:
        self.buffer.push(payload)
        if self.lost == 0:
            self.lost += 1
            raise ConnectionError("connection lost before the reply")

    def drain(self, limit, handler):
        return self.buffer.drain(limit, handler)


@pytest.fixture
def system(tmp_path):
    return System.from_settings(Settings(home=tmp_path, push_batch_size=10), patterns=())


def stored(system) -> int:
    with system.store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(samples)).scalar_one()


def test_a_batch_whose_reply_was_lost_is_sent_again_and_stored_once(system):
    buffer = ReplyLost(push_buffer(system.settings, system.store))
    client = Client(system.settings, store=system.store, buffer=buffer)
    for second in range(5):
        client.record("shop.orders", 1.0, ts=1_000.0 + second)
    assert client.flush() == 0  # "failed", though the batch is in the buffer
    for second in range(5, 8):
        client.record("shop.orders", 1.0, ts=1_000.0 + second)

    assert client.flush() == 8  # the failed batch again, as it was, then the new one
    client.close()
    system.collect()

    assert stored(system) == 8


def test_past_max_buffered_the_oldest_failed_batches_are_dropped_and_counted(system):
    class Flaky:
        def __init__(self, buffer) -> None:
            self.buffer, self.up = buffer, False

        def push(self, payload: str) -> None:
            if not self.up:
                raise ConnectionError("down")
            self.buffer.push(payload)

        def drain(self, limit, handler):
            return self.buffer.drain(limit, handler)

    buffer = Flaky(push_buffer(system.settings, system.store))
    client = Client(system.settings, store=system.store, buffer=buffer, max_buffered=25)
    for batch in range(4):
        for second in range(10):
            client.record("shop.orders", float(batch), ts=1_000.0 + 10 * batch + second)
        client.flush()
    buffer.up = True

    assert client.flush() == 20  # the newest two batches were held
    client.close()
    system.collect()
    assert client.dropped == 20
    with system.store.engine.connect() as connection:
        values = connection.scalars(select(samples.c.value).distinct()).all()
    assert sorted(values) == [2.0, 3.0]
