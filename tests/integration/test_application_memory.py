"""Memory that only grows in the application's own worker (issue 14), healed end to end: each
pool process pushes its resident memory under its worker and pool slot; a leak lifts one slot
past its learned band far under any absolute limit, ``celery_pool_restart`` reaches the worker
on the application's broker, and the slot's fresh process is seen back at its usual. Real Redis
(selfmend's broker and the application's), PostgreSQL store, a prefork ``celery worker``."""

from __future__ import annotations

import time

import pytest
from celery.result import AsyncResult

from selfmend.models import ExecutionState, IncidentStatus, Sample, series_key
from tests.integration.application_worker import application_worker, installed_watching
from tests.integration.conftest import collecting, wait_for

pytestmark = pytest.mark.integration

MIB = 1024 * 1024

# The built-in process_memory_high in seconds: 50 MiB over the usual, 10 minutes' history.
QUICK_MEMORY = """
[[patterns]]
name = "process_memory_high"
severity = "high"
condition = { series = "process.rss_bytes", aggregate = "min", window = 4, op = ">", \
learn = { floor = 52_428_800, history = 600, warm_up = 60, relearn = 1 } }
action = { name = "celery_pool_restart", params = { destination = ["{worker}"] } }
why = "recycle_process: the built-in, in seconds."
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with application_worker(tmp_path_factory.mktemp("shop")) as running:
        yield running


def test_a_leaking_pool_process_is_restarted_and_its_slot_seen_back_at_its_usual(
    celery_app, install, shop
):
    broker, node, sender = shop
    system = installed_watching(install, broker, QUICK_MEMORY)
    slots = {slot: {"worker": node, "process": slot} for slot in ("0", "1")}

    def reported() -> dict[str, float] | None:
        recent = {
            slot: system.store.samples.window(series_key("process.rss_bytes", labels), 0)
            for slot, labels in slots.items()
        }
        if not all(recent.values()):
            return None
        return {slot: max(value for _, value in points) for slot, points in recent.items()}

    def chain():
        return celery_app.send_task("selfmend.analyze").get(timeout=10)["chains"] or None

    def receipts() -> None:
        """A restarted pool replaces an idle process after its next task: give both work."""
        for order in range(4):
            sender.send_task("shop.send_receipt", args=[order])

    with collecting(celery_app, also=receipts):
        usual = wait_for(reported, timeout=30, every=0.5)
        now = time.time()
        system.store.samples.insert([
            Sample(series="process.rss_bytes", ts=now - 600 + i / 2, value=usual[slot],
                   labels=labels)
            for slot, labels in slots.items()
            for i in range(1160)
        ])  # fmt: skip
        for _ in range(8):  # 320 MiB kept over two processes: one holds 160 MiB or more
            sender.send_task("shop.import_feed", args=[40])
        chains = wait_for(chain, timeout=60, every=0.5)
        # Both slots may leak and open an incident each; a restart applied for either is judged.
        applied = {
            int(incident_id): AsyncResult(ids["verify"], app=celery_app)
            for incident_id, ids in chains.items()
            if AsyncResult(ids["remediate"], app=celery_app).get(timeout=30)["decision"]
            == "applied"
        }
        verdicts = {incident_id: v.get(timeout=60) for incident_id, v in applied.items()}

    fixed = [i for i, verdict in verdicts.items() if verdict["verdict"] == "fixed"]
    assert fixed, verdicts
    # A second incident's restart may find the processes replaced already: changed nothing.
    assert {verdict["verdict"] for verdict in verdicts.values()} <= {"fixed", "uncredited"}
    for incident_id in fixed:
        incident = system.store.incidents.get(incident_id)
        assert incident.series_key in {series_key("process.rss_bytes", s) for s in slots.values()}
        assert max(usual.values()) + 50 * MIB < incident.evidence["value"] < 2 * 1024 * MIB
        assert incident.status is IncidentStatus.RESOLVED
        steps = [(e.action, e.state) for e in system.store.executions.history(incident_id)]
        assert steps[-2:] == [
            ("celery_pool_restart", ExecutionState.APPLIED),
            ("celery_pool_restart", ExecutionState.VERIFIED),
        ]
