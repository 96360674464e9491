"""The loop end to end on a real worker, Redis broker and results, PostgreSQL store.

Stages are triggered the way an application triggers them, with ``send_task``; each result is
read back from the result backend, and each step from the audit log.
"""

from __future__ import annotations

import pytest
from celery.result import AsyncResult
from typer.testing import CliRunner

from selfmend.cli import app as cli
from selfmend.client import Client
from selfmend.detect.patterns import ActionSpec
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.store.tables import executions
from tests.app_reads import app_reads
from tests.integration.conftest import FAST_PATTERNS, FakeShopCache, collecting, wait_for

pytestmark = pytest.mark.integration

CACHE_PATTERN = "cache_hit_ratio_low"


def analyze_until_chain(celery_app) -> tuple[int, dict[str, str]]:
    def started():
        report = celery_app.send_task("selfmend.analyze").get(timeout=10)
        return report["chains"] or None

    chains = wait_for(started, timeout=30, every=0.5)
    incident_id, ids = next(iter(chains.items()))
    return int(incident_id), ids


def states(system, incident_id: int) -> list[ExecutionState]:
    return [step.state for step in system.store.executions.history(incident_id)]


def test_pushed_fault_is_detected_fixed_and_verified(celery_app, install, settings):
    system = install()
    client = Client(settings, store=system.store, control_ttl=0.1)
    with FakeShopCache(client) as shop, collecting(celery_app, client.flush):
        wait_for(lambda: system.store.samples.count() > 10)
        shop.broken = True
        incident_id, ids = analyze_until_chain(celery_app)
        verdict = AsyncResult(ids["verify"], app=celery_app).get(timeout=60)
    remediation = AsyncResult(ids["remediate"], app=celery_app).get(timeout=5)

    assert remediation["decision"] == "applied"
    assert remediation["incident_id"] == incident_id
    assert verdict["verdict"] == "fixed"
    incident = system.store.incidents.get(incident_id)
    assert incident.pattern == CACHE_PATTERN
    assert incident.status is IncidentStatus.RESOLVED
    # cache_warm, the first candidate, needs a cache Redis this shop has not set: the next fixes.
    history = system.store.executions.history(incident_id)
    assert [(e.action, e.state) for e in history] == [
        ("cache_warm", ExecutionState.FAILED),
        ("set_control", ExecutionState.PLANNED),
        ("set_control", ExecutionState.APPLYING),
        ("set_control", ExecutionState.APPLIED),
        ("set_control", ExecutionState.VERIFIED),
    ]
    assert "SELFMEND_CACHE_REDIS_URL" in history[0].reason
    assert system.store.controls.get("cache.warm") is True
    [outcome] = system.store.outcomes.confidence()
    assert (outcome["name"], outcome["successes"], outcome["failures"]) == (CACHE_PATTERN, 1, 0)


def test_failed_verification_rolls_back(celery_app, install, settings):
    system = install()
    client = Client(settings, store=system.store, control_ttl=0.1)
    with FakeShopCache(client, heals=False) as shop, collecting(celery_app, client.flush):
        wait_for(lambda: system.store.samples.count() > 10)
        shop.broken = True
        incident_id, ids = analyze_until_chain(celery_app)
        verdict = AsyncResult(ids["verify"], app=celery_app).get(timeout=60)

    assert verdict["verdict"] == "not_fixed"
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ROLLED_BACK
    assert states(system, incident_id)[-1] is ExecutionState.ROLLED_BACK
    # The client declared cache.warm=False on first read; rollback restored exactly that.
    assert system.store.controls.get("cache.warm") is False
    [outcome] = system.store.outcomes.confidence()
    assert outcome["failures"] == 1


def open_cache_incident(system) -> int:
    # The shop reads cache.warm, as FakeShopCache does: set_control changes only what is read.
    app_reads(system.settings, system.store, "cache.warm", default=False)
    incident, created = system.store.incidents.open(
        pattern=CACHE_PATTERN,
        target='cache.hit_ratio{service="shop"}',
        severity="medium",
        series_key='cache.hit_ratio{service="shop"}',
        root_cause="test",
        evidence={},
    )
    assert created
    return incident.id


def test_redelivered_remediate_message_applies_once(celery_app, install):
    system = install()
    incident_id = open_cache_incident(system)
    first = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)
    again = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)

    assert first["decision"] == "applied"
    assert again["decision"] == "noop"  # the incident moved on: nothing is applied again
    applied = [s for s in states(system, incident_id) if s is ExecutionState.APPLIED]
    assert len(applied) == 1


def test_redelivery_after_claim_resumes_without_second_apply(celery_app, install):
    """A message redelivered after the first delivery applied, before it moved the incident."""
    system = install()
    incident_id = open_cache_incident(system)
    celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)
    # Put the incident back where a crash between apply and advance would have left it.
    system.store.incidents.advance(
        incident_id, [IncidentStatus.VERIFYING], IncidentStatus.REMEDIATING
    )
    again = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)

    assert again["decision"] == "applied"
    assert again["reason"].startswith("already applied")
    assert states(system, incident_id).count(ExecutionState.APPLIED) == 1


def test_analyze_sends_again_a_verification_the_broker_lost(celery_app, install):
    """remediate ran, its verify message never arrived: the next analyze pass past the longest
    verification (plus retry_seconds) sends verify again, and the fix is judged."""
    system = install(retry_seconds=1)
    incident_id = open_cache_incident(system)
    applied = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)
    assert applied["decision"] == "applied"

    def resent():
        report = celery_app.send_task("selfmend.analyze").get(timeout=10)
        return report["verifications"].get(str(incident_id))

    verify_id = wait_for(resent, timeout=system.verifier.longest_wait + 20, every=0.5)
    judged = AsyncResult(verify_id, app=celery_app).get(timeout=30)

    assert judged["verdict"] == "not_fixed"  # no fresh sample arrived to show it fixed
    assert system.store.incidents.get(incident_id).status is not IncidentStatus.VERIFYING
    assert len(system.store.outcomes.confidence()) == 1


def test_kill_switch_on_applies_nothing(celery_app, install):
    system = install()
    system.store.controls.set_kill_switch(True, actor="test", reason="freeze")
    incident_id = open_cache_incident(system)
    result = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)

    assert result["decision"] == "skipped"
    assert "kill switch" in result["reason"]
    assert system.store.controls.get("cache.warm") is False  # as the shop's first read left it
    assert ExecutionState.APPLIED not in states(system, incident_id)
    assert system.store.incidents.get(incident_id).status is IncidentStatus.OPEN


def test_dry_run_plans_and_does_not_apply(celery_app, install):
    system = install(mode="dry_run")
    incident_id = open_cache_incident(system)
    result = celery_app.send_task("selfmend.remediate", (incident_id,)).get(timeout=10)

    assert result["decision"] == "dry_run"
    assert states(system, incident_id) == [
        ExecutionState.FAILED,  # cache_warm: no cache Redis here, so set_control plans
        ExecutionState.PLANNED,
        ExecutionState.DRY_RUN,
    ]
    assert system.store.controls.get("cache.warm") is False  # as the shop's first read left it


def test_high_risk_action_waits_for_approval_and_runs_after_cli_approve(
    celery_app, install, settings, monkeypatch
):
    risky = tuple(
        p.model_copy(
            update={
                "actions": (
                    ActionSpec(
                        name="set_control", risk="high", params={"key": "cache.warm", "value": True}
                    ),
                )
            }
        )
        if p.name == CACHE_PATTERN
        else p
        for p in FAST_PATTERNS
    )
    system = install(patterns=risky)
    client = Client(settings, store=system.store, control_ttl=0.1)
    with FakeShopCache(client) as shop, collecting(celery_app, client.flush):
        wait_for(lambda: system.store.samples.count() > 10)
        shop.broken = True
        incident_id, ids = analyze_until_chain(celery_app)
        waiting = AsyncResult(ids["remediate"], app=celery_app).get(timeout=10)
        assert waiting["decision"] == "awaiting_approval"
        assert system.store.controls.get("cache.warm") is False
        assert system.store.incidents.get(incident_id).status is IncidentStatus.AWAITING_APPROVAL

        outcome = CliRunner().invoke(cli, ["approve", str(incident_id)])
        assert outcome.exit_code == 0, outcome.output
        _, resumed = analyze_until_chain(celery_app)
        applied = AsyncResult(resumed["remediate"], app=celery_app).get(timeout=10)
        AsyncResult(resumed["verify"], app=celery_app).get(timeout=60)

    assert applied["decision"] == "applied"
    assert system.store.controls.get("cache.warm") is True
    steps = system.store.executions.history(incident_id)
    approval = next(s for s in steps if s.state is ExecutionState.APPROVED)
    assert approval.actor.startswith("cli:")
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED


@pytest.mark.parametrize("arguments", [("abc",), (0,), (None,)])
def test_remediate_with_wrong_arguments_fails_clearly_and_writes_nothing(
    celery_app, install, arguments
):
    system = install()
    result = celery_app.send_task("selfmend.remediate", arguments)
    with pytest.raises(Exception, match="incident_id") as raised:
        result.get(timeout=10)
    assert type(raised.value).__name__ == "InvalidInput"
    with system.store.engine.connect() as connection:
        assert connection.execute(executions.select()).first() is None


def test_verify_with_malformed_remediation_names_the_field(celery_app, install):
    install()
    result = celery_app.send_task("selfmend.verify", ({"incident_id": 1, "decision": 5},))
    with pytest.raises(Exception, match="decision"):
        result.get(timeout=10)
