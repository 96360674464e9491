"""Verify judges the execution it was sent, once: a late, replayed or racing verify of a fix that
is no longer the incident's current one is a logged no-op, and a rollback whose worker died after
the verdict is finished by the backlog. The real remediate → verify path on SQLite, with a second
candidate fix the way a user registers one."""

import time

import pytest

from selfmend.config import Settings
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.executor import Remediation
from selfmend.store.executions import Execution
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from tests.unit.shop import PATTERNS, RestartShop, fault, pending, verify_with

KILLED = SystemExit("worker killed between the verdict and the rollback")


def build(tmp_path, patterns=PATTERNS, faults=()) -> tuple[System, RestartShop]:
    settings = Settings(
        home=tmp_path,
        mode="auto",
        settle_seconds=1,
        verify_window_seconds=5,
        cooldown_seconds=0,
        retry_seconds=60,
    )
    made: list[RestartShop] = []

    def restart_shop(store) -> RestartShop:
        made.append(RestartShop(store, faults=list(faults)))
        return made[-1]

    system = System.from_settings(settings, patterns=patterns, action_factories=(restart_shop,))
    app_reads_what_its_fixes_change(system)
    return system, made[0]


def rows(system: System, incident_id: int, state: ExecutionState) -> list[Execution]:
    return [e for e in system.store.executions.history(incident_id) if e.state is state]


def test_a_late_verify_of_a_superseded_fix_is_a_logged_no_op(tmp_path):
    system, _ = build(tmp_path)
    incident_id = fault(system)
    first = system.executor.remediate(incident_id)
    assert verify_with(system, first, 30.0).status == "open"  # drain did not help: rolled back
    second = system.executor.remediate(incident_id)
    assert (second.action, second.decision) == ("restart_shop", "applied")

    replayed = system.verifier.verify(first, now=first.applied_at + 10)  # first's verify, again

    assert replayed.verdict == "none"
    assert system.store.incidents.get(incident_id).status is IncidentStatus.VERIFYING
    assert system.store.outcomes.counts("orders_stuck") == {"set_control": (0, 1)}
    [ignored] = rows(system, incident_id, ExecutionState.IGNORED)
    assert ignored.action == "set_control"
    assert f"execution {first.execution_id}" in ignored.reason
    assert "superseded by restart_shop" in ignored.reason
    # The second fix is still judged, on its own samples, and once.
    assert verify_with(system, second, 2.0).status == "resolved"
    assert system.store.outcomes.counts("orders_stuck") == {
        "set_control": (0, 1),
        "restart_shop": (1, 0),
    }


def test_a_verify_replayed_after_its_verdict_is_a_logged_no_op_and_the_next_fix_still_comes(
    tmp_path,
):
    system, _ = build(tmp_path)
    incident_id = fault(system)
    first = system.executor.remediate(incident_id)
    verify_with(system, first, 30.0)

    replayed = system.verifier.verify(first, now=first.applied_at + 20)

    assert replayed.verdict == "none"
    [ignored] = rows(system, incident_id, ExecutionState.IGNORED)
    assert "already judged" in ignored.reason
    assert system.store.outcomes.counts("orders_stuck") == {"set_control": (0, 1)}
    assert system.backlog.sweep(time.time()).retried == [incident_id]  # the next candidate


@pytest.mark.parametrize("late_saw", [30.0, 2.0], ids=["same verdict", "the other verdict"])
def test_two_verifies_of_one_fix_racing_give_one_verdict_even_after_the_next_fix(
    tmp_path, late_saw
):
    """The late verify read its window while its fix was current (and, in one case, saw it
    working); by the time it commits, the other delivery judged that fix not fixed and the next
    candidate is applied and being verified."""
    system, _ = build(tmp_path)
    incident_id = fault(system)
    first = system.executor.remediate(incident_id)
    pending(system, 30.0, first.applied_at + 1, seconds=5)
    read_window = system.store.samples.window
    overtaken: list[Remediation] = []

    def window_then_overtaken(*args, **kwargs):
        points = read_window(*args, **kwargs)
        if overtaken:
            return points
        overtaken.append(first)
        system.verifier.verify(first, now=first.applied_at + 10)  # the other delivery
        overtaken.append(system.executor.remediate(incident_id))  # the next candidate
        return [(ts, late_saw) for ts, _ in points]

    system.store.samples.window = window_then_overtaken
    late = system.verifier.verify(first, now=first.applied_at + 10)
    system.store.samples.window = read_window

    assert overtaken[1].action == "restart_shop"
    assert late.verdict == "none"
    assert system.store.incidents.get(incident_id).status is IncidentStatus.VERIFYING
    assert system.store.outcomes.counts("orders_stuck") == {"set_control": (0, 1)}
    assert len(rows(system, incident_id, ExecutionState.IGNORED)) == 1
    assert rows(system, incident_id, ExecutionState.VERIFIED) == []
    assert verify_with(system, overtaken[1], 2.0).status == "resolved"


def test_a_rollback_whose_worker_died_after_the_verdict_is_finished_by_the_backlog(tmp_path):
    (pattern,) = PATTERNS
    restart_only = pattern.model_copy(update={"actions": pattern.actions[1:]})
    system, shop = build(tmp_path, patterns=(restart_only,), faults=(KILLED,))
    incident_id = fault(system)
    applied = system.executor.remediate(incident_id)
    assert system.store.controls.get("shop.restarted") is True

    with pytest.raises(SystemExit):  # died after committing the verdict, before the rollback
        verify_with(system, applied, 30.0)
    assert system.store.controls.get("shop.restarted") is True  # the failed fix is still on
    assert system.backlog.sweep(time.time()).rolled_back == []  # its verifier may still be at it

    due = system.backlog.sweep(time.time() + 61)

    assert due.rolled_back == [incident_id]
    assert system.store.controls.get("shop.restarted") is None
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ROLLED_BACK
    [done] = rows(system, incident_id, ExecutionState.ROLLED_BACK)
    assert done.actor == "selfmend.backlog"
    assert system.store.outcomes.counts("orders_stuck") == {"restart_shop": (0, 1)}
    # Done is recorded: a later sweep rolls nothing back again.
    assert system.backlog.sweep(time.time() + 120).rolled_back == []
    assert shop.rollbacks == 2
    notified = system.store.notifications.for_incident(incident_id)
    assert [n.kind for n in notified] == ["rolled_back"]  # told once, when it was rolled back


def test_the_next_candidate_waits_for_the_rollback_its_verdict_owes(tmp_path):
    (pattern,) = PATTERNS
    restart_first = pattern.model_copy(update={"actions": pattern.actions[::-1]})
    system, _ = build(tmp_path, patterns=(restart_first,), faults=(KILLED,))
    incident_id = fault(system)
    applied = system.executor.remediate(incident_id)
    with pytest.raises(SystemExit):
        verify_with(system, applied, 30.0)

    assert system.backlog.sweep(time.time()).to_remediate == []
    assert system.executor.remediate(incident_id).decision == "noop"  # not while it is owed
    due = system.backlog.sweep(time.time() + 61)

    assert due.rolled_back == [incident_id]
    assert due.retried == [incident_id]
    assert system.store.controls.get("shop.restarted") is None
    assert system.executor.remediate(incident_id).action == "set_control"


def test_a_rollback_that_fails_escalates_the_incident_to_a_person(tmp_path):
    (pattern,) = PATTERNS
    restart_only = pattern.model_copy(update={"actions": pattern.actions[1:]})
    refused = RuntimeError("the shop's supervisor refused")
    system, _ = build(tmp_path, patterns=(restart_only,), faults=(refused,))
    incident_id = fault(system)

    judged = verify_with(system, system.executor.remediate(incident_id), 30.0)

    assert (judged.verdict, judged.status) == ("not_fixed", "escalated")
    [failed] = rows(system, incident_id, ExecutionState.FAILED)
    assert failed.reason == "rollback failed: the shop's supervisor refused"
    notified = system.store.notifications.for_incident(incident_id)
    assert [n.kind for n in notified] == ["escalated"]
    assert system.backlog.sweep(time.time() + 61).rolled_back == []  # a person's now


def test_a_payer_of_an_old_rollback_does_not_settle_the_next_candidates_debt(tmp_path):
    (pattern,) = PATTERNS
    restart_first = pattern.model_copy(update={"actions": pattern.actions[::-1]})
    system, _ = build(tmp_path, patterns=(restart_first,), faults=(KILLED,))
    incident_id = fault(system)
    with pytest.raises(SystemExit):
        verify_with(system, system.executor.remediate(incident_id), 30.0)
    [first_debt] = rows(system, incident_id, ExecutionState.ROLLBACK_OWED)
    assert system.backlog.sweep(time.time() + 61).rolled_back == [incident_id]
    second = system.executor.remediate(incident_id)
    drain = system.catalogue.get("set_control")
    rollback = drain.rollback

    def dies(plan):  # the second verdict's worker dies before its rollback too
        raise KILLED

    drain.rollback = dies
    with pytest.raises(SystemExit):
        verify_with(system, second, 30.0)
    drain.rollback = rollback

    # A payer of the first debt that was slow all along settles nothing of the second's.
    late = system.verifier.rollbacks.pay(
        system.store.incidents.get(incident_id), first_debt, "selfmend.backlog"
    )

    assert late is IncidentStatus.ROLLING_BACK
    assert system.store.controls.get("shop.drain") is True  # the second fix, still owed
    assert system.backlog.sweep(time.time() + 61).rolled_back == [incident_id]
    assert system.store.controls.get("shop.drain") is None
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ROLLED_BACK
