"""The admin API over a SQLite store, through FastAPI's test client: keys and roles, approvals
and hand resolutions recorded as the key's holder, the kill switch and live settings, /metrics
from the store; and ``selfmend resolve``, the CLI's way to close an incident."""

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from selfmend.api.app import create_app
from selfmend.api.keys import AdminKey, KeyRing, Role
from selfmend.cli import app as cli
from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.models import ExecutionState, IncidentStatus
from tests.unit.test_safety_gate import build, open_incident

KEYS = [
    {"name": "val", "role": "viewer", "key": "v" * 32},
    {"name": "olga", "role": "operator", "key": "o" * 32},
    {"name": "ada", "role": "admin", "key": "a" * 32},
]
VIEWER, OPERATOR, ADMIN = ({"X-Admin-Key": key["key"]} for key in KEYS)


@pytest.fixture
def system(tmp_path):
    return build(tmp_path, admin_keys=KEYS)


@pytest.fixture
def api(system):
    return TestClient(create_app(system.settings, system.store))


def test_every_route_but_health_and_metrics_needs_a_valid_key(api):
    assert api.get("/health").json()["status"] == "ok"
    assert api.get("/metrics").status_code == 200
    assert api.get("/incidents").status_code == 401
    assert api.get("/incidents", headers={"X-Admin-Key": "v" * 31}).status_code == 401
    assert api.get("/incidents", headers=VIEWER).status_code == 200


def test_roles_are_ordered_viewer_operator_admin(api, system):
    incident_id = open_incident(system, "risky")
    system.executor.remediate(incident_id)
    body = {"enabled": True, "reason": "drill"}

    assert api.post(f"/incidents/{incident_id}/approve", json={}, headers=VIEWER).status_code == 403
    assert api.put("/kill-switch", json=body, headers=OPERATOR).status_code == 403
    assert api.put("/kill-switch", json=body, headers=ADMIN).status_code == 200
    assert system.store.controls.kill_switch()


def test_an_approval_from_the_api_is_recorded_as_the_keys_holder(api, system):
    incident_id = open_incident(system, "risky")
    assert system.executor.remediate(incident_id).decision == "awaiting_approval"

    answer = api.post(
        f"/incidents/{incident_id}/approve", json={"reason": "looked at it"}, headers=OPERATOR
    )

    assert answer.status_code == 200
    assert answer.json()["state"] == "approved"
    approved = [
        step
        for step in system.store.executions.history(incident_id)
        if step.state is ExecutionState.APPROVED
    ]
    assert [(s.actor, s.reason) for s in approved] == [("api:olga", "looked at it")]
    assert system.backlog.sweep(time.time()).approved == [incident_id]


def test_an_incident_not_waiting_cannot_be_approved_and_a_missing_one_is_404(api, system):
    incident_id = open_incident(system, "fault_0")

    refused = api.post(f"/incidents/{incident_id}/approve", json={}, headers=OPERATOR)
    missing = api.post("/incidents/999/approve", json={}, headers=OPERATOR)

    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"incident {incident_id} is open, not awaiting approval",
        }
    }
    assert missing.status_code == 404
    assert system.store.incidents.get(incident_id).status is IncidentStatus.OPEN


def test_a_malformed_body_names_the_field(api, system):
    answer = api.put("/kill-switch", json={"enabled": "maybe", "reason": ""}, headers=ADMIN)

    assert answer.status_code == 422
    assert {tuple(field["loc"]) for field in answer.json()["error"]["fields"]} == {
        ("body", "enabled"),
        ("body", "reason"),
    }
    assert not system.store.controls.kill_switch()


def test_live_settings_are_set_and_removed_by_an_admin(api, system):
    assert api.put("/controls/db.pool_size", json={"value": 30}, headers=ADMIN).status_code == 200
    assert system.store.controls.get("db.pool_size") == 30
    controls = api.get("/status", headers=VIEWER).json()["controls"]
    assert controls["db.pool_size"] == 30  # beside the settings the application read
    assert api.put("/controls/bad key!", json={"value": 1}, headers=ADMIN).status_code == 422

    assert api.delete("/controls/db.pool_size", headers=ADMIN).status_code == 204
    assert not system.store.controls.exists("db.pool_size")


def test_an_incident_shows_its_audit_log(api, system):
    incident_id = open_incident(system, "fault_1")
    system.executor.remediate(incident_id)

    shown = api.get(f"/incidents/{incident_id}", headers=VIEWER).json()

    assert shown["pattern"] == "fault_1"
    assert [step["state"] for step in shown["audit"]][:2] == ["planned", "applying"]


def test_metrics_come_from_the_store(api, system):
    open_incident(system, "fault_2")
    system.executor.remediate(open_incident(system, "fault_3"))

    families = {f.name: f for f in text_string_to_metric_families(api.get("/metrics").text)}

    incidents = {s.labels["status"]: s.value for s in families["selfmend_incidents"].samples}
    assert incidents == {"open": 1.0, "verifying": 1.0}
    applied = [
        s
        for s in families["selfmend_execution_steps"].samples
        if s.labels == {"action": "set_control", "state": "applied"}
    ]
    assert [s.value for s in applied] == [1.0]
    assert families["selfmend_kill_switch"].samples[0].value == 0.0


def test_keys_are_checked_when_the_settings_load():
    with pytest.raises(ConfigurationError, match=r"SELFMEND_ADMIN_KEYS: \[0\]\.role: role 'root'"):
        Settings(admin_keys=[{"name": "x", "role": "root", "key": "k" * 32}])
    with pytest.raises(ConfigurationError, match=r"\[0\]\.key: string should have at least 16"):
        Settings(admin_keys=[{"name": "x", "role": "admin", "key": "short"}])
    with pytest.raises(ConfigurationError, match="SELFMEND_ADMIN_KEYS: two admin keys share a key"):
        Settings(admin_keys=[{**KEYS[0], "name": "other"}, KEYS[0]])


def test_the_key_ring_finds_the_holder_only_for_the_exact_key():
    ring = KeyRing([AdminKey(**key) for key in KEYS])
    assert ring.holder("o" * 32).role is Role.OPERATOR
    assert ring.holder("o" * 33) is None
    assert ring.holder("") is None
    assert ring.holder(None) is None


def test_a_person_resolves_an_escalated_incident_and_it_is_in_the_audit_log(api, system):
    incident_id = open_incident(system, "risky")
    system.executor.remediate(incident_id)  # waits for approval
    body = {"reason": "changed the setting by hand"}

    assert (
        api.post(f"/incidents/{incident_id}/resolve", json=body, headers=VIEWER).status_code == 403
    )
    assert (
        api.post(f"/incidents/{incident_id}/resolve", json={}, headers=OPERATOR).status_code == 422
    )
    done = api.post(f"/incidents/{incident_id}/resolve", json=body, headers=OPERATOR)

    assert done.status_code == 204
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED
    closed = system.store.executions.history(incident_id)[-1]
    assert (closed.state, closed.actor, closed.reason) == (
        ExecutionState.CLOSED,
        "api:olga",
        "changed the setting by hand",
    )
    again = api.post(f"/incidents/{incident_id}/resolve", json=body, headers=OPERATOR)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == (
        f"incident {incident_id} is resolved: it is closed already"
    )


def test_an_incident_being_verified_is_not_closed_by_hand(api, system):
    incident_id = open_incident(system, "fault_4")
    system.executor.remediate(incident_id)  # applied: verifying

    refused = api.post(f"/incidents/{incident_id}/resolve", json={"reason": "x"}, headers=OPERATOR)

    assert refused.status_code == 409
    assert "its fix is being applied" in refused.json()["error"]["message"]
    assert system.store.incidents.get(incident_id).status is IncidentStatus.VERIFYING


def test_selfmend_resolve_closes_an_incident_as_the_person_at_the_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))
    system = build(tmp_path)
    incident_id = open_incident(system, "fault_5")

    refused = CliRunner().invoke(cli, ["resolve", str(incident_id)])
    done = CliRunner().invoke(cli, ["resolve", str(incident_id), "--reason", "fixed the caller"])

    assert refused.exit_code == 2 and "--reason" in refused.output
    assert done.exit_code == 0, done.output
    assert system.store.incidents.get(incident_id).status is IncidentStatus.RESOLVED
    assert system.store.executions.history(incident_id)[-1].actor.startswith("cli:")


def error_of(answer) -> dict:
    """The one error body shape: {"error": {"code": ..., "message": ...}}, and nothing else."""
    body = answer.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


def test_every_error_has_one_body_shape(api, system):
    incident_id = open_incident(system, "fault_6")
    unknown_key = api.get("/incidents", headers={"X-Admin-Key": "x" * 32})
    too_weak = api.put("/kill-switch", json={"enabled": True, "reason": "r"}, headers=VIEWER)
    missing = api.get("/incidents/999", headers=VIEWER)
    no_route = api.get("/no-such-route", headers=VIEWER)
    malformed = api.put("/kill-switch", json={"enabled": "maybe"}, headers=ADMIN)
    conflict = api.post(f"/incidents/{incident_id}/approve", json={}, headers=OPERATOR)

    assert (unknown_key.status_code, error_of(unknown_key)["code"]) == (401, "unauthorized")
    assert (too_weak.status_code, error_of(too_weak)["code"]) == (403, "forbidden")
    assert (missing.status_code, error_of(missing)) == (
        404,
        {"code": "not_found", "message": "incident 999 does not exist"},
    )
    assert (no_route.status_code, error_of(no_route)["code"]) == (404, "not_found")
    assert (malformed.status_code, error_of(malformed)["code"]) == (422, "invalid_input")
    assert error_of(malformed)["message"].startswith("body.enabled: ")
    assert (conflict.status_code, error_of(conflict)["code"]) == (409, "invalid_input")


def test_a_kill_switch_for_an_action_that_does_not_exist_is_refused(api, system):
    body = {"enabled": True, "action": "set_contrl", "reason": "drill"}

    answer = api.put("/kill-switch", json=body, headers=ADMIN)

    assert answer.status_code == 422
    assert error_of(answer) == {
        "code": "configuration",
        "message": "kill switch action: unknown action 'set_contrl'; known actions: "
        + ", ".join(system.catalogue.names()),
    }
    assert not system.store.controls.kill_switch("set_contrl")
    good = api.put("/kill-switch", json={**body, "action": "set_control"}, headers=ADMIN)
    assert good.status_code == 200
    assert system.store.controls.kill_switch("set_control")


def test_the_cli_refuses_a_kill_switch_for_an_action_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))
    system = build(tmp_path)

    refused = CliRunner().invoke(cli, ["kill-switch", "on", "--action", "set_contrl"])

    assert refused.exit_code == 2
    assert "unknown action 'set_contrl'" in refused.stderr
    assert not system.store.controls.kill_switch("set_contrl")
    done = CliRunner().invoke(cli, ["kill-switch", "on", "--action", "set_control"])
    assert done.exit_code == 0, done.output
    assert system.store.controls.kill_switch("set_control")


def test_the_audit_log_of_an_incident_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))
    build(tmp_path)

    shown = CliRunner().invoke(cli, ["incidents", "--audit", "999999"])

    assert shown.exit_code == 2
    assert shown.stderr == "error: incident 999999 does not exist\n"


def test_selfmend_api_without_keys_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))

    started = CliRunner().invoke(cli, ["api"])

    assert started.exit_code == 2
    assert started.stderr.startswith("error: SELFMEND_ADMIN_KEYS is empty")
    assert started.stderr.count("\n") == 1


def test_the_api_docs_load_nothing_from_outside(api):
    page = api.get("/api-docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)

    assert len(assets) >= 3, page.text  # the script, the stylesheet, the OpenAPI document
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        assert api.get(asset).status_code == 200, asset
    assert "/api-docs/openapi.json" in assets


def test_the_readme_names_the_metrics_as_they_are_scraped(api):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("`/health` and `/metrics` need no key") :].split("\n\n")[0]
    named = set(re.findall(r"`(selfmend_[a-z_]+)(?:\{[^}`]*\})?`", paragraph))
    scraped = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(api.get("/metrics").text)
    }

    assert named == scraped


def test_changes_of_live_settings_and_switches_are_audited_with_who_made_them(api, system):
    api.put("/controls/db.pool_size", json={"value": 30}, headers=ADMIN)
    api.put("/controls/db.pool_size", json={"value": 20}, headers=ADMIN)
    api.delete("/controls/db.pool_size", headers=ADMIN)
    api.put("/kill-switch", json={"enabled": True, "reason": "drill"}, headers=ADMIN)
    api.put("/kill-switch", json={"enabled": False, "reason": "done"}, headers=ADMIN)

    changes = [
        (c.kind, c.key, c.old, c.new, c.actor, c.reason)
        for c in reversed(system.store.controls.changes())
        if c.actor != "client default"  # the application's first reads of its settings
    ]

    assert changes == [
        ("control", "db.pool_size", None, 30, "api:ada", None),
        ("control", "db.pool_size", 30, 20, "api:ada", None),
        ("control", "db.pool_size", 20, None, "api:ada", None),
        ("kill_switch", "*", None, True, "api:ada", "drill"),
        ("kill_switch", "*", True, False, "api:ada", "done"),
    ]
