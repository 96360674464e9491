"""Setting a series' sensitivity: one core call (``set_sensitivity``) behind the CLI and the admin
API, the bounds it refuses with the value named, an unknown series named, and an audit row for
every change, with who, why, the old value and the new."""

import getpass
import math
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from selfmend.api.app import create_app
from selfmend.cli import app as cli
from selfmend.config import Settings
from selfmend.errors import InvalidInput, NotFound
from selfmend.models import Sample, series_key
from selfmend.sensitivity import set_sensitivity
from selfmend.store.sensitivities import KIND
from selfmend.system import System

KEYS = [
    {"name": "val", "role": "viewer", "key": "v" * 32},
    {"name": "olga", "role": "operator", "key": "o" * 32},
]
VIEWER, OPERATOR = ({"X-Admin-Key": key["key"]} for key in KEYS)
# A label value with "/" in it: the key is one path segment once quoted, several once decoded.
KEY = series_key("db.query_ms", {"service": "shop/eu"})
URL = f"/series/{quote(KEY, safe='')}/sensitivity"


@pytest.fixture
def system(tmp_path):
    system = System.from_settings(Settings(home=tmp_path, admin_keys=KEYS), patterns=())
    sample = Sample(
        series="db.query_ms", ts=1_700_000_000.0, value=12.5, labels={"service": "shop/eu"}
    )
    system.store.samples.insert([sample])
    return system


@pytest.fixture
def api(system):
    return TestClient(create_app(system.settings, system.store, actions=()))


def audit(system: System) -> list[tuple]:
    changes = system.store.controls.changes(KEY, kind=KIND)
    return [(c.old, c.new, c.actor, c.reason) for c in reversed(changes)]


def test_each_change_is_kept_with_who_and_why_and_audited_from_the_old_value(system):
    set_sensitivity(system.store, KEY, 2.0, actor="ops", reason="missed a slow checkout")
    set_sensitivity(system.store, KEY, 0.5, actor="optimizer", reason="3 false alarms this week")

    setting = system.store.sensitivities.get(KEY)

    assert (setting.sensitivity, setting.set_by, setting.reason) == (
        0.5,
        "optimizer",
        "3 false alarms this week",
    )
    assert audit(system) == [
        (None, 2.0, "ops", "missed a slow checkout"),
        (2.0, 0.5, "optimizer", "3 false alarms this week"),
    ]


@pytest.mark.parametrize("value", [0.05, 10.5, math.nan, -1.0])
def test_a_value_out_of_bounds_is_refused_naming_it_and_the_bounds(system, value):
    with pytest.raises(InvalidInput) as refused:
        set_sensitivity(system.store, KEY, value, actor="ops", reason="typo")

    assert f"sensitivity {value:g} is outside [0.1, 10]" in str(refused.value)
    assert system.store.sensitivities.get(KEY).sensitivity == 1.0
    assert audit(system) == []


def test_an_unknown_series_is_named_and_nothing_is_written(system):
    with pytest.raises(NotFound, match=r"series 'db.query_ms\{service=\"shop\"\}' does not"):
        set_sensitivity(system.store, 'db.query_ms{service="shop"}', 2.0, "ops", "wrong key")

    assert system.store.controls.changes(kind=KIND) == []


def test_a_series_nobody_set_shows_the_default_with_no_one_behind_it(api):
    answer = api.get(URL, headers=VIEWER)

    assert answer.status_code == 200
    assert answer.json() == {
        "series": KEY,
        "sensitivity": 1.0,
        "set_by": None,
        "reason": None,
        "set_at": None,
    }


def test_an_operator_sets_it_from_the_api_as_the_keys_holder(api, system):
    body = {"sensitivity": 2.0, "reason": "missed a slow checkout"}

    assert api.put(URL, json=body, headers=VIEWER).status_code == 403
    answer = api.put(URL, json=body, headers=OPERATOR)

    assert answer.status_code == 200
    assert answer.json()["set_by"] == "api:olga"
    assert api.get(URL, headers=VIEWER).json()["sensitivity"] == 2.0
    assert audit(system) == [(None, 2.0, "api:olga", "missed a slow checkout")]


def test_the_api_refuses_a_value_out_of_bounds_naming_the_field(api, system):
    answer = api.put(URL, json={"sensitivity": 20, "reason": "louder"}, headers=OPERATOR)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert [field["loc"] for field in error["fields"]] == [["body", "sensitivity"]]
    assert "sensitivity 20 is outside [0.1, 10]" in error["message"]
    assert audit(system) == []


def test_the_api_answers_404_naming_an_unknown_series(api):
    url = f"/series/{quote('db.nothing', safe='')}/sensitivity"

    shown = api.get(url, headers=VIEWER)
    refused = api.put(url, json={"sensitivity": 2.0, "reason": "x"}, headers=OPERATOR)

    for answer in (shown, refused):
        assert answer.status_code == 404
        assert answer.json()["error"] == {
            "code": "not_found",
            "message": "series 'db.nothing' does not exist",
        }


def test_the_cli_shows_and_sets_it_as_the_user_with_a_reason(monkeypatch, tmp_path, system):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))

    shown = CliRunner().invoke(cli, ["sensitivity", KEY])
    unexplained = CliRunner().invoke(cli, ["sensitivity", KEY, "0.5"])
    done = CliRunner().invoke(cli, ["sensitivity", KEY, "0.5", "--reason", "noisy at night"])

    assert shown.exit_code == 0, shown.output
    assert "sensitivity 1 (the default)" in shown.output
    assert unexplained.exit_code == 2 and "--reason" in unexplained.output
    assert done.exit_code == 0, done.output
    assert f"sensitivity 0.5, set by cli:{getpass.getuser()}" in done.output
    assert audit(system) == [(None, 0.5, f"cli:{getpass.getuser()}", "noisy at night")]


def test_the_cli_refuses_a_bad_value_and_an_unknown_series_in_one_line(
    monkeypatch, tmp_path, system
):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))

    out_of_bounds = CliRunner().invoke(cli, ["sensitivity", KEY, "20", "--reason", "louder"])
    unknown = CliRunner().invoke(cli, ["sensitivity", "db.nothing"])

    assert out_of_bounds.exit_code == 2
    assert out_of_bounds.stderr.startswith("error: sensitivity 20 is outside [0.1, 10]")
    assert unknown.exit_code == 2
    assert unknown.stderr == "error: series 'db.nothing' does not exist\n"
    assert audit(system) == []
