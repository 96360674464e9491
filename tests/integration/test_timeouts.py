"""Every engine selfmend opens is bounded: a statement that runs past the statement timeout is
cancelled with an error that says so, and a server that takes the connection and never answers
fails the connect within the connect timeout. Real PostgreSQL (its ``postgres`` database, read
only); the silent server is a loopback socket that listens and never answers."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Hung

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from selfmend.collect.postgres import PostgresCollector
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.resilience.schema.databases import watched_databases
from selfmend.store.engine import DatabaseTimeouts, make_engine
from tests.resources import POSTGRES

pytestmark = pytest.mark.integration

URL = f"{POSTGRES}/postgres"
TIMEOUTS = DatabaseTimeouts(connect_seconds=2, statement_seconds=0.5)

ENGINES = {
    "store": lambda url: make_engine(url, TIMEOUTS),
    "collector": lambda url: PostgresCollector(url, timeouts=TIMEOUTS).engine,
    "actions": lambda url: MonitoredDatabases([url], TIMEOUTS).engine("postgres"),
    "schema watch": lambda url: watched_databases([url], TIMEOUTS)[0].engine,
}


def bounded(seconds: float, work) -> float:
    """How long ``work`` took to raise; fails the test, rather than hanging it, past
    ``seconds``."""
    began = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(work).result(timeout=seconds)
        except Hung:
            pytest.fail(f"still waiting after {seconds} s: no timeout bounds it")
    return time.monotonic() - began


@pytest.mark.parametrize("made_by", ENGINES)
def test_a_statement_past_the_statement_timeout_is_cancelled_saying_why(made_by):
    engine: Engine = ENGINES[made_by](URL)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "500ms"
            began = time.monotonic()
            with pytest.raises(OperationalError, match="canceling statement due to statement"):
                connection.execute(text("SELECT pg_sleep(30)"))
        assert time.monotonic() - began < 5
    finally:
        engine.dispose()


@pytest.fixture
def silent_server():
    """A loopback port whose kernel completes the TCP handshake (the listen backlog) and
    whose server never reads or answers: a database host in trouble, not a refused port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"postgresql://selfmend@127.0.0.1:{server.getsockname()[1]}/postgres"
    server.close()


@pytest.mark.parametrize("made_by", ENGINES)
def test_a_server_that_never_answers_fails_the_connect_within_the_connect_timeout(
    made_by, silent_server
):
    engine: Engine = ENGINES[made_by](silent_server)

    def connect() -> None:
        with pytest.raises(OperationalError, match="timeout"):
            engine.connect()

    try:
        took = bounded(15, connect)
    finally:
        engine.dispose()
    assert TIMEOUTS.connect_seconds - 0.5 <= took < TIMEOUTS.connect_seconds + 3
