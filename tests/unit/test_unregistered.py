"""The integration check as a stage: an unregistered task name opens an incident proposing the
alias, which waits for a person, is applied once approved, and is kept only if no message under
the wrong name fails afterwards. A SQLite store and a registry that answers like the workers."""

import time

import pytest

from selfmend.config import Settings
from selfmend.detect.unregistered import UNREGISTERED_TASK_PATTERN, incident_target
from selfmend.errors import ConfigurationError
from selfmend.models import IncidentStatus, LogEvent, Severity
from selfmend.remedy.approvals import approve
from selfmend.store.task_aliases import TaskAliasStore
from selfmend.system import System

REGISTERED = {"shop@a": {"shop.send_invoice", "shop.refund"}, "selfmend@b": {"selfmend.analyze"}}
MISSPELLED = "shop.send_invoce"


class WorkerRegistry:
    def registered(self) -> dict[str, set[str]]:
        return REGISTERED


def unregistered_line(name: str, ts: float) -> LogEvent:
    return LogEvent(
        ts=ts,
        level="ERROR",
        message=f"Received unregistered task of type '{name}'.",
        logger="celery.worker.consumer.consumer",
    )


@pytest.fixture
def system(tmp_path):
    settings = Settings(
        home=tmp_path, mode="auto", settle_seconds=1, verify_window_seconds=5, cooldown_seconds=0
    )
    return System.from_settings(settings, patterns=(), task_registry=WorkerRegistry())


def checked(system, *names: str, at: float | None = None):
    at = time.time() if at is None else at
    system.store.samples.insert_logs([unregistered_line(name, at - 10) for name in names])
    return system.check_task_names(now=at)


def test_a_misspelled_name_opens_one_incident_proposing_the_alias(system):
    report = checked(system, MISSPELLED, MISSPELLED)
    (incident_id,) = report["new_incidents"]
    incident = system.store.incidents.get(incident_id)

    assert report["findings"] == [
        {"name": MISSPELLED, "suggestion": "shop.send_invoice", "count": 2}
    ]
    assert incident.pattern == UNREGISTERED_TASK_PATTERN
    assert incident.target == incident_target(MISSPELLED)
    assert incident.severity is Severity.HIGH
    assert incident.evidence["proposal"] == {
        "name": "task_alias",
        "params": {"name": MISSPELLED, "target": "shop.send_invoice"},
    }
    assert checked(system, MISSPELLED)["new_incidents"] == []  # still open: not opened again


def test_the_alias_waits_for_a_person_then_applies_and_is_verified(system):
    (incident_id,) = checked(system, MISSPELLED)["new_incidents"]

    waiting = system.executor.remediate(incident_id)
    assert waiting.decision == "awaiting_approval"
    assert TaskAliasStore(system.store.controls).all() == {}

    approve(system.store, incident_id, actor="ops", timeout_seconds=3600)
    assert system.analyze()["approved"] == [incident_id]
    applied = system.executor.remediate(incident_id)
    assert applied.decision == "applied"
    assert TaskAliasStore(system.store.controls).all() == {MISSPELLED: "shop.send_invoice"}

    judged = system.verifier.verify(applied, now=applied.applied_at + 10)
    assert (judged.verdict, judged.status) == ("fixed", "resolved")
    # The name is still in the logs of the past hour, but the alias routes it now.
    assert checked(system, MISSPELLED)["new_incidents"] == []


def test_an_alias_under_which_messages_still_fail_is_rolled_back(system):
    (incident_id,) = checked(system, MISSPELLED)["new_incidents"]
    system.executor.remediate(incident_id)  # waits for approval
    approve(system.store, incident_id, actor="ops", timeout_seconds=3600)
    applied = system.executor.remediate(incident_id)

    settled = applied.applied_at + 2
    system.store.samples.insert_logs([unregistered_line(MISSPELLED, settled)])
    judged = system.verifier.verify(applied, now=applied.applied_at + 10)

    assert (judged.verdict, judged.status) == ("not_fixed", "rolled_back")
    assert judged.after["unregistered_since_fix"] == 1
    assert TaskAliasStore(system.store.controls).all() == {}


def test_a_name_like_no_registered_task_is_escalated_without_a_proposal(system):
    (incident_id,) = checked(system, "billing.close_month")["new_incidents"]
    assert "proposal" not in system.store.incidents.get(incident_id).evidence

    assert system.executor.remediate(incident_id).decision == "escalated"


def test_a_name_no_longer_seen_resolves_its_incident(system):
    now = time.time()
    (incident_id,) = checked(system, MISSPELLED, at=now)["new_incidents"]

    later = system.check_task_names(now=now + 2 * 3600)  # its log lines aged out of the window

    assert later["cleared"] == [incident_id]
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED


def test_names_in_the_beat_schedule_and_the_source_are_checked_too(tmp_path):
    app_source = tmp_path / "shop"
    app_source.mkdir()
    (app_source / "orders.py").write_text('app.send_task("shop.refnud", args=[1])\n')
    settings = Settings(home=tmp_path, task_check_paths=[str(app_source)])
    schedule = {"nightly": {"task": "selfmend.analyse", "schedule": 60}}
    system = System.from_settings(
        settings, patterns=(), task_registry=WorkerRegistry(), beat_schedule=schedule
    )

    findings = system.check_task_names()["findings"]

    assert [(f["name"], f["suggestion"]) for f in findings] == [
        ("selfmend.analyse", "selfmend.analyze"),
        ("shop.refnud", "shop.refund"),
    ]


def test_a_proposal_outside_the_allow_list_is_refused_and_escalated(system):
    incident, _ = system.store.incidents.open(
        pattern=UNREGISTERED_TASK_PATTERN,
        target=incident_target("shop.x"),
        severity=Severity.HIGH,
        series_key=None,
        root_cause="forged",
        evidence={"name": "shop.x", "proposal": {"name": "run_shell", "params": {"cmd": "id"}}},
    )

    remediation = system.executor.remediate(incident.id)

    assert remediation.decision == "escalated"
    assert "unknown action 'run_shell'" in remediation.reason


def test_the_check_without_a_task_registry_says_what_to_wire_in(tmp_path):
    system = System.from_settings(Settings(home=tmp_path), patterns=())
    with pytest.raises(ConfigurationError, match="task_registry"):
        system.check_task_names()


def test_with_the_built_in_catalogue_analyze_leaves_the_checks_incident_alone(tmp_path):
    """The check reads the same ERROR lines per name, with a fix to propose: no catalogue
    pattern may resolve its incident or open a second one on the log lines."""
    settings = Settings(home=tmp_path, mode="observe")
    system = System.from_settings(settings, task_registry=WorkerRegistry())
    (incident_id,) = checked(system, MISSPELLED)["new_incidents"]

    system.analyze()

    assert system.store.incidents.get(incident_id).status is IncidentStatus.OPEN
    assert [i.id for i in system.store.incidents.list()] == [incident_id]
