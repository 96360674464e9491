"""The exporter mapping file: the shipped one reads, and a user's file with a mistake is refused
naming the file, the entry and the field."""

from __future__ import annotations

import pytest

from selfmend.collect.exporter_file import read_exporters
from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.system import System


def test_the_shipped_file_maps_the_common_python_exporters():
    histograms = {entry.histogram for entry in read_exporters(None)}

    assert histograms >= {
        "http_request_duration_seconds",
        "starlette_request_duration_seconds",
        "django_http_requests_latency_seconds_by_view_method",
        "flask_http_request_duration_seconds",
    }


def test_a_users_entries_come_before_the_shipped_ones(tmp_path):
    user_file = tmp_path / "exporters.toml"
    user_file.write_text(
        '[[exporters]]\nname = "mine"\nhistogram = "http_request_duration_seconds"\n'
    )

    entries = read_exporters(user_file)

    assert entries[0].name == "mine"
    assert len(entries) == len(read_exporters(None)) + 1


def test_the_setting_names_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_EXPORTERS_FILE", str(tmp_path / "exporters.toml"))

    assert Settings().exporters_file == tmp_path / "exporters.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[exporters]]\nname = "shop"\nhistogram = "shop_seconds"\nbukets = 3\n',
            "exporter 'shop' (exporters[0]): bukets: is not a known key",
        ),
        (
            '[[exporters]]\nname = "shop"\nhistogram = "shop_seconds"\nstatus_labels = "code"\n',
            "exporter 'shop' (exporters[0]): status_labels: ",
        ),
        (
            '[[exporters]]\nname = "shop"\nhistogram = 5\n',
            "exporter 'shop' (exporters[0]): histogram: ",
        ),
        (
            '[[exporters]]\nname = "shop"\nhistogram = "shop seconds"\n',
            "exporter 'shop' (exporters[0]): histogram: ",
        ),
        (
            '[[exporters]]\nname = "shop"\nhistogram = "shop_seconds"\nunit = "minutes"\n',
            "exporter 'shop' (exporters[0]): unit: ",
        ),
        (
            '[[exporters]]\nname = "shop"\n',
            "exporter 'shop' (exporters[0]): give a histogram, a counter or both",
        ),
        ('[[exporters]]\nhistogram = "shop_seconds"\n', "exporters[0]: name: is required"),
        (
            '[[exporters]]\nname = "a"\ncounter = "a_total"\n'
            '[[exporters]]\nname = "a"\ncounter = "b_total"\n',
            "exporter 'a' (exporters[1]): name: is already given by exporters[0]",
        ),
        ('[[exporter]]\nname = "shop"\n', "exporter: is not a known key"),
        ("exporters = 3\n", "exporters: must be an array of tables"),
        ("[[exporters]\n", "is not valid TOML"),
    ],
)
def test_a_mistake_in_the_users_file_names_the_file_the_entry_and_the_field(
    tmp_path, text, message
):
    user_file = tmp_path / "exporters.toml"
    user_file.write_text(text)

    with pytest.raises(ConfigurationError) as refused:
        read_exporters(user_file)

    assert str(refused.value).startswith(f"{user_file}: ")
    assert message in str(refused.value)


def test_a_missing_users_file_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read the exporters file"):
        read_exporters(tmp_path / "absent.toml")


def test_selfmend_refuses_to_start_with_a_bad_users_file(tmp_path):
    user_file = tmp_path / "exporters.toml"
    user_file.write_text('[[exporters]]\nname = "shop"\nhistogram = 5\n')

    with pytest.raises(ConfigurationError, match=r"exporters\.toml: exporter 'shop'"):
        System.from_settings(Settings(home=tmp_path, exporters_file=user_file), patterns=())
