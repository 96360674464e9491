"""The client's helpers for timings and request outcomes: the application says how long and how
it went, and the client sends the milliseconds and, once per flush, the error ratios the HTTP
patterns read. No application computes a ratio."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from selfmend import client as front
from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import InvalidInput


class Captured:
    """A push buffer that keeps what the client sent."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def push(self, payload: str) -> None:
        self.items.extend(json.loads(payload))

    def take(self) -> list[tuple[str, float, dict]]:
        sent = [(i["series"], i["value"], i["labels"]) for i in self.items if "series" in i]
        self.items.clear()
        return sent


@pytest.fixture
def captured(tmp_path):
    buffer = Captured()
    client = Client(Settings(home=tmp_path, push_flush_seconds=60), buffer=buffer)
    yield client, buffer
    client.close()


def test_outcomes_become_error_ratios_once_per_flush(captured):
    client, buffer = captured
    for status in [200] * 15 + [404] * 3 + [503, 500]:
        client.outcome("http", status, service="shop")
    client.outcome("http", "5xx", service="cart")

    client.flush()
    sent = buffer.take()

    assert sorted(sent) == [
        ("http.client_error_ratio", 0.0, {"service": "cart"}),
        ("http.client_error_ratio", 0.15, {"service": "shop"}),
        ("http.error_ratio", 0.1, {"service": "shop"}),
        ("http.error_ratio", 1.0, {"service": "cart"}),
    ]
    client.flush()
    assert buffer.take() == []  # no request since: no ratio at all


def test_an_outcome_with_its_duration_records_the_milliseconds_too(captured):
    client, buffer = captured
    client.outcome("http", 200, ms=12.5, route="/cart")

    client.flush()

    assert ("http.request_ms", 12.5, {"route": "/cart"}) in buffer.take()


def test_timed_records_milliseconds_as_a_context_manager_and_a_decorator(captured):
    client, buffer = captured

    with client.timed("db.query_ms", table="orders"):
        time.sleep(0.02)

    @client.timed("http.request_ms")
    def handler(seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    @client.timed("http.request_ms", kind="async")
    async def async_handler() -> str:
        await asyncio.sleep(0.03)
        return "async done"

    assert handler(0.01) == "done"
    assert asyncio.run(async_handler()) == "async done"
    with pytest.raises(ValueError), client.timed("db.query_ms", table="orders"):
        raise ValueError("a failed query is timed too")
    client.flush()
    sent = buffer.take()

    assert [(name, labels) for name, _, labels in sent] == [
        ("db.query_ms", {"table": "orders"}),
        ("http.request_ms", {}),
        ("http.request_ms", {"kind": "async"}),
        ("db.query_ms", {"table": "orders"}),
    ]
    timings = [value for _, value, _ in sent]
    assert 20 <= timings[0] < 1000
    assert 10 <= timings[1] < 1000
    assert 30 <= timings[2] < 1000
    assert timings[3] < 1000


def test_a_malformed_outcome_fails_in_the_caller_naming_what_is_wrong(captured):
    client, _ = captured

    with pytest.raises(InvalidInput, match="status"):
        client.outcome("http", "teapot")


def test_the_front_decorates_without_building_the_client(tmp_path, monkeypatch):
    monkeypatch.setattr(front, "_default", None)

    @front.timed("http.request_ms")
    def handler() -> None:
        pass

    assert front._default is None
    buffer = Captured()
    client = front.configure(Settings(home=tmp_path, push_flush_seconds=60), buffer=buffer)
    try:
        handler()
        front.outcome("http", 502)
        front.flush()
    finally:
        client.close()
        monkeypatch.setattr(front, "_default", None)

    assert {name for name, _, _ in buffer.take()} == {
        "http.request_ms",
        "http.error_ratio",
        "http.client_error_ratio",
    }
