"""A malformed ``SELFMEND_*`` variable is refused when the settings load, in one line that names
the variable, what is wrong with its value and what it allows; the CLI prints that line alone."""

import os
import subprocess
import sys

import pytest

from selfmend import cli
from selfmend.config import Settings
from selfmend.errors import ConfigurationError

SECRET = "s3cr3t-s3cr3t-s3cr3t"


def refusal(monkeypatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        Settings()
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_number_that_is_not_one_names_the_variable_and_what_it_allows(monkeypatch):
    assert refusal(monkeypatch, "SELFMEND_COLLECT_INTERVAL", "abc") == (
        "SELFMEND_COLLECT_INTERVAL: input should be a valid number, unable to parse string as a "
        "number; got 'abc'; allowed: a number above 0"
    )


def test_a_number_out_of_range_says_the_range(monkeypatch):
    assert refusal(monkeypatch, "SELFMEND_VERIFY_MIN_SAMPLES", "0") == (
        "SELFMEND_VERIFY_MIN_SAMPLES: input should be greater than or equal to 1; got '0'; "
        "allowed: a whole number of at least 1"
    )


def test_a_mode_not_known_lists_the_modes(monkeypatch):
    assert refusal(monkeypatch, "SELFMEND_MODE", "fast") == (
        "SELFMEND_MODE: input should be 'observe', 'dry_run' or 'auto'; got 'fast'; "
        "allowed: one of observe, dry_run, auto"
    )


def test_json_that_does_not_parse_is_named_without_echoing_it(monkeypatch):
    message = refusal(monkeypatch, "SELFMEND_ADMIN_KEYS", f'[{{"name": "x", "key": "{SECRET}"')
    assert message.startswith("SELFMEND_ADMIN_KEYS: is not valid JSON")
    assert "allowed: JSON list of" in message
    assert SECRET not in message


def test_a_wrong_entry_in_a_json_list_names_its_place_and_keeps_the_key_secret(monkeypatch):
    keys = f'[{{"name": "x", "role": "root", "key": "{SECRET}"}}]'
    message = refusal(monkeypatch, "SELFMEND_ADMIN_KEYS", keys)
    assert message.startswith("SELFMEND_ADMIN_KEYS: [0].role: role 'root' is not one of")
    assert SECRET not in message


def test_settings_that_disagree_name_the_variables(monkeypatch):
    monkeypatch.setenv("SELFMEND_SETTLE_SECONDS", "4000")
    with pytest.raises(ConfigurationError, match=r"^SELFMEND_VISIBILITY_TIMEOUT_SECONDS \(3600\) "):
        Settings()


def test_the_cli_prints_one_line_and_exits_non_zero(monkeypatch, capsys):
    monkeypatch.setenv("SELFMEND_MODE", "fast")
    monkeypatch.setattr(sys, "argv", ["selfmend", "status"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: SELFMEND_MODE: input should be")
    assert captured.err.count("\n") == 1


def test_the_worker_refuses_to_start_with_one_line(tmp_path):
    patterns = tmp_path / "patterns.toml"
    patterns.write_bytes(b"\x89PNG\x00\xff")
    env = {"PATH": os.environ["PATH"], "SELFMEND_HOME": str(tmp_path)}
    for name, value, named in [
        ("SELFMEND_COLLECT_INTERVAL", "-1", "SELFMEND_COLLECT_INTERVAL: input should be greater"),
        ("SELFMEND_PATTERNS_FILE", str(patterns), f"{patterns}: is not a text file"),
    ]:
        started = subprocess.run(
            [sys.executable, "-c", "import workers"],
            env={**env, name: value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 1
        assert started.stderr.startswith(f"selfmend: {named}")
        assert started.stderr.count("\n") == 1
