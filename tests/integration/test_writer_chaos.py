"""The resilient writer under chaos on a real PostgreSQL: columns renamed while threads write,
the writer's connection terminated during batches, and a real HTTP server playing the model.
Every row sent is either written once (healed rows with their log entry) or refused with a
clear error; none is lost or written twice."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from sqlalchemy import create_engine

from selfmend.resilience.writer import ModelNamer, ResilientWriter
from selfmend.store import Store
from tests.resources import database_name, database_url, fresh_database

pytestmark = pytest.mark.integration

APP = database_name("writer_app")
APP_NAME = "selfmend_writer_chaos"


def app_sql(statement: str) -> list[tuple]:
    with psycopg.connect(database_url("writer_app"), autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def store():
    store = Store.from_url(fresh_database("writer_store"), migrate=True)
    yield store
    store.close()


@pytest.fixture
def app_engine():
    url = fresh_database("writer_app")
    app_sql(
        "CREATE TABLE orders (id serial PRIMARY KEY, seq int NOT NULL, customer_name text NOT NULL)"
    )
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        pool_pre_ping=True,
        connect_args={"application_name": APP_NAME},
    )
    yield engine
    engine.dispose()


def table_seqs() -> Counter:
    return Counter(seq for (seq,) in app_sql("SELECT seq FROM orders"))


def outcomes(
    results: list[tuple[list[int], object]],
) -> tuple[dict[int, object], dict[int, object]]:
    """Per sent ``seq``: its RowWritten, or its RowError."""
    written, refused = {}, {}
    for seqs, result in results:
        for row in result.rows:
            (written if hasattr(row, "heals") else refused)[seqs[row.index]] = row
    return written, refused


def assert_each_row_once(sent: int, written: dict, refused: dict, store: Store) -> None:
    assert len(written) + len(refused) == sent
    in_table = table_seqs()
    assert set(in_table) == set(written), "a row written is missing, or a refused one is there"
    assert max(in_table.values()) == 1, "a row was written twice"
    entries = {entry.id: entry for entry in store.heals.entries(APP, "orders")}
    for row in written.values():
        if row.heals:
            assert entries[row.entry_id].state == "written"
            assert entries[row.entry_id].row_key == row.key


def test_columns_renamed_while_threads_write_lose_no_row(app_engine, store):
    writer = ResilientWriter(app_engine, store, watch_interval=0.2)
    threads, size = 4, 20
    results: list[tuple[list[int], object]] = []
    lock = threading.Lock()
    started = threading.Barrier(threads + 1)
    stop = threading.Event()

    def write(thread: int) -> None:
        started.wait()
        batch = 0
        while not stop.is_set():
            seqs = [(thread * 100_000 + batch) * size + i for i in range(size)]
            result = writer.insert_many(
                "orders", [{"seq": seq, "customer_name": f"c{seq}"} for seq in seqs]
            )
            with lock:
                results.append((seqs, result))
            batch += 1

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    started.wait()
    time.sleep(0.5)
    app_sql('ALTER TABLE orders RENAME COLUMN customer_name TO "customerName"')  # healable
    time.sleep(0.5)
    app_sql('ALTER TABLE orders RENAME COLUMN "customerName" TO buyer')  # nothing heals this
    store.controls.set(f"schema.version.{APP}", 3, actor="test")
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join(60)

    written, refused = outcomes(results)
    assert_each_row_once(size * len(results), written, refused, store)
    rules = Counter(heal.rule for row in written.values() for heal in row.heals)
    assert rules["normalised"] > 0, "no row was written between the renames"
    assert refused, "no row was sent after the second rename"
    assert {error.kind for error in refused.values()} <= {"unknown_column", "schema_changed"}
    assert all(error.reason for error in refused.values())


def test_a_connection_terminated_during_batches_loses_and_doubles_nothing(app_engine, store):
    writer = ResilientWriter(app_engine, store, retries=3)
    stop = threading.Event()
    terminated = []

    def terminate_the_writer() -> None:
        rng = random.Random(5)
        with psycopg.connect(database_url("writer_app"), autocommit=True) as killer:
            while not stop.wait(rng.uniform(0.02, 0.15)):
                pids = killer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database() AND state <> 'idle'",
                    [APP_NAME],
                ).fetchall()
                for (pid,) in pids:
                    killer.execute("SELECT pg_terminate_backend(%s)", [pid])
                    terminated.append(pid)

    killer = threading.Thread(target=terminate_the_writer)
    killer.start()
    results: list[tuple[list[int], object]] = []
    batches = 0
    try:
        # 80 batches at least, and on until the killer has struck a few times: how many
        # batches that takes depends on how fast the machine writes them.
        while batches < 80 or (len(terminated) <= 5 and batches < 800):
            seqs = list(range(batches * 250, (batches + 1) * 250))
            # every fifth row needs healing, so log entries are written under fire too
            rows = [
                {"seq": seq, ("customerName" if seq % 5 == 0 else "customer_name"): f"c{seq}"}
                for seq in seqs
            ]
            results.append((seqs, writer.insert_many("orders", rows)))
            batches += 1
    finally:
        stop.set()
        killer.join(10)

    written, refused = outcomes(results)
    assert len(terminated) > 5, "the writer's connection was hardly ever terminated"
    assert {error.kind for error in refused.values()} <= {"connection_lost", "outcome_unknown"}
    unknown = {seq for seq, error in refused.items() if error.kind == "outcome_unknown"}
    known = {seq: error for seq, error in refused.items() if seq not in unknown}
    in_table = table_seqs()
    assert max(in_table.values()) == 1, "a row was written twice"
    assert set(in_table) - unknown == set(written), "a reported row is wrong about the table"
    assert len(written) + len(known) + len(unknown) == batches * 250
    assert len(written) > batches * 250 // 2, "most batches should survive with retries"


class ScriptedModelServer:
    """An OpenAI-compatible chat-completions endpoint on loopback giving scripted answers."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body})
                answer = server.answers.pop(0)
                reply = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": answer}}]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_only_a_real_column_named_by_the_model_is_accepted(app_engine, store):
    server = ScriptedModelServer(["customer_name", "customer_label", "DROP TABLE orders; --"])
    writer = ResilientWriter(app_engine, store, model=ModelNamer(server.url, "test-model"))
    try:
        result = writer.insert_many(
            "orders",
            [
                {"seq": 1, "purchaser": "Ada"},
                {"seq": 2, "purchaser": "Bob"},  # the same key: the model is not asked twice
                {"seq": 3, "client_label": "Cy"},
                {"seq": 4, "who": "Di"},
            ],
        )
    finally:
        server.close()
    assert [(row.index, row.heals[0].rule) for row in result.written] == [
        (0, "model"),
        (1, "model"),
    ]
    assert [(error.index, error.field, error.kind) for error in result.errors] == [
        (2, "client_label", "unknown_column"),
        (3, "who", "unknown_column"),
    ]
    assert app_sql("SELECT seq, customer_name FROM orders ORDER BY seq") == [(1, "Ada"), (2, "Bob")]
    assert app_sql("SELECT count(*) FROM orders") == [(2,)]  # the table is still there
    assert len(server.requests) == 3
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "test-model"
    assert "'purchaser'" in request["body"]["messages"][0]["content"]
    entries = store.heals.entries(APP, "orders")
    assert [entry.heals for entry in entries] == [
        {"purchaser": {"column": "customer_name", "rule": "model"}}
    ] * 2


def test_a_batch_the_database_refuses_keeps_its_good_rows(app_engine, store):
    """Clean rows go in by COPY; a row the database refuses aborts the COPY, and the batch is
    written row by row, so only that row is refused, with the database's reason."""
    app_sql("ALTER TABLE orders ADD CONSTRAINT seq_positive CHECK (seq >= 0)")
    writer = ResilientWriter(app_engine, store)
    rows = [{"seq": seq, "customer_name": f"c{seq}"} for seq in range(200)]
    rows[120]["seq"] = -1

    result = writer.insert_many("orders", rows)

    assert [(e.index, e.kind) for e in result.errors] == [(120, "database")]
    assert "seq_positive" in result.errors[0].reason
    assert len(result.written) == 199
    assert sorted(table_seqs()) == [seq for seq in range(200) if seq != 120]
    clean = [{"seq": seq, "customer_name": "again"} for seq in range(1000, 1300)]
    assert len(writer.insert_many("orders", clean).written) == 300
