"""User pattern files: every mistake is refused with the file, the pattern and the field named,
and a user pattern replaces the built-in one of its name."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfmend.cli import app as cli
from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.pattern_file import read_patterns
from selfmend.errors import ConfigurationError
from selfmend.system import System

CONDITION = (
    'condition = { series = "shop.orders_pending", aggregate = "min", window = 60, op = ">", '
    "threshold = 5 }"
)
ORDERS_STUCK = f"""
[[patterns]]
name = "orders_stuck"
severity = "high"
{CONDITION}
why = "check_payments: orders pile up."
"""


def patterns_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "patterns.toml"
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> str:
    path = patterns_file(tmp_path, text)
    with pytest.raises(ConfigurationError) as raised:
        read_patterns(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_valid_file_gives_its_patterns(tmp_path):
    [pattern] = read_patterns(patterns_file(tmp_path, ORDERS_STUCK))
    assert pattern.name == "orders_stuck"
    assert pattern.condition.describe() == "min(shop.orders_pending, 60s) > 5"
    assert pattern.actions == ()


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (('"min"', '"p90"'), "condition.aggregate", "'rate'; got 'p90'"),
        (("threshold = 5", "threshold = inf"), "condition.threshold", "finite number"),
        (("threshold = 5", "threshold = nan"), "condition.threshold", "finite number"),
        (("threshold = 5", 'threshold = "high"'), "condition.threshold", "valid number"),
        (("threshold = 5", "threshold = true"), "condition.threshold", "valid number"),
        (('op = ">"', 'op = "=>"'), "condition.op", "got '=>'"),
        (("window = 60", "window = -1"), "condition.window", "greater than 0"),
        (('"high"', '"urgent"'), "severity", "'critical'; got 'urgent'"),
        (('why = "check_payments: orders pile up."\n', ""), "why", "is required"),
        (('why = "check_payments: orders pile up."', 'why = ""'), "why", "at least 1 character"),
        (("threshold = 5 }", 'threshold = 5, unit = "s" }'), "condition.unit", "not a known key"),
        (('severity = "high"', 'severity = "high"\nowner = "me"'), "owner", "not a known key"),
        (
            ("threshold = 5 }", "learn = { floor = 1, span = 60 } }"),
            "condition.learn.span",
            "not a known key",
        ),
        (
            ("threshold = 5 }", "learn = { quantile = 0.3 } }"),
            "condition.learn.quantile",
            "greater than 0.5",
        ),
        (
            ("threshold = 5 }", "learn = { warm_up = 7200, history = 3600 } }"),
            "condition.learn",
            "longer than history",
        ),
        (
            ("threshold = 5 }", "learn = { floor = -1 } }"),
            "condition.learn.floor",
            "greater than or equal to 0",
        ),
        ((", threshold = 5 }", " }"), "condition", "give a threshold"),
        (
            (
                'why = "',
                'unless = { series = "x", aggregate = "count", window = 60, op = ">" }\nwhy = "',
            ),
            "unless",
            "give a threshold",
        ),
        (
            (
                'why = "',
                'unless = { series = "x", aggregate = "count", window = 60, op = ">", '
                'threshold = 0, by = 1 }\nwhy = "',
            ),
            "unless.by",
            "not a known key",
        ),
    ],
)
def test_a_mistake_names_the_pattern_and_the_field(tmp_path, change, field, problem):
    old, new = change
    assert old in ORDERS_STUCK
    message = refusal(tmp_path, ORDERS_STUCK.replace(old, new, 1))

    assert message.startswith(f"pattern 'orders_stuck' (patterns[0]): {field}: ")
    assert problem in message


def test_a_bad_regular_expression_is_refused(tmp_path):
    text = ORDERS_STUCK.replace(CONDITION, 'condition = { kind = "log", regex = "(", window = 60 }')
    message = refusal(tmp_path, text)
    assert message.startswith("pattern 'orders_stuck' (patterns[0]): condition.regex: ")
    assert "is not a valid regular expression" in message


def test_an_unknown_condition_kind_lists_the_kinds(tmp_path):
    message = refusal(tmp_path, ORDERS_STUCK.replace("{ series", '{ kind = "sometimes", series'))
    assert message == (
        "pattern 'orders_stuck' (patterns[0]): condition: "
        "kind must be metric (the default), all, any or log"
    )


def test_a_mistake_inside_a_composite_names_its_place(tmp_path):
    composite = (
        'condition = { kind = "all", of = [{ series = "a", aggregate = "min", window = 60, '
        'op = ">", threshold = 1 }, { series = "b", aggregate = "avg", window = 60, op = ">", '
        "threshold = 1 }] }"
    )
    message = refusal(tmp_path, ORDERS_STUCK.replace(CONDITION, composite))
    assert message.startswith("pattern 'orders_stuck' (patterns[0]): condition.of[1].aggregate: ")
    assert "got 'avg'" in message


def test_a_log_pattern_with_an_action_is_refused(tmp_path):
    text = ORDERS_STUCK.replace(
        CONDITION,
        'condition = { kind = "log", regex = "declined", window = 60 }\n'
        'action = { name = "set_control", params = { key = "shop.retry", value = true } }',
    )
    message = refusal(tmp_path, text)
    assert message.startswith("pattern 'orders_stuck' (patterns[0]): action: ")
    assert "no series to verify a fix on" in message


def test_a_pattern_without_a_name_is_named_by_its_index(tmp_path):
    text = ORDERS_STUCK + ORDERS_STUCK.replace('name = "orders_stuck"\n', "")
    assert refusal(tmp_path, text) == "patterns[1]: name: is required"


def test_a_name_given_twice_is_refused(tmp_path):
    message = refusal(tmp_path, ORDERS_STUCK + ORDERS_STUCK)
    assert message == (
        "pattern 'orders_stuck' (patterns[1]): name: is already given by patterns[0]"
    )


def test_a_misspelt_table_is_refused(tmp_path):
    message = refusal(tmp_path, ORDERS_STUCK.replace("[[patterns]]", "[[pattern]]"))
    assert message == "pattern: is not a known key; the file holds [[patterns]] tables only"


def test_a_file_that_is_not_toml_or_not_there_is_refused(tmp_path):
    assert refusal(tmp_path, "[[patterns]\n").startswith("is not valid TOML")
    with pytest.raises(ConfigurationError, match="cannot read the patterns file"):
        read_patterns(tmp_path / "missing.toml")


def system_with(tmp_path: Path, text: str) -> System:
    settings = Settings(home=tmp_path, patterns_file=patterns_file(tmp_path, text))
    return System.from_settings(settings)


def test_an_unknown_action_is_refused_at_start_naming_the_known_ones(tmp_path):
    text = ORDERS_STUCK + 'action = { name = "restart_everything" }\n'
    with pytest.raises(ConfigurationError) as raised:
        system_with(tmp_path, text)
    known = System.from_settings(Settings(home=tmp_path)).catalogue.names()
    assert {"cache_warm", "pg_create_index", "set_control", "task_alias"} <= set(known)
    assert str(raised.value) == (
        f"{tmp_path / 'patterns.toml'}: pattern 'orders_stuck': action.name: unknown action "
        f"'restart_everything'; known actions: {', '.join(sorted(known))}"
    )


def test_a_user_pattern_replaces_the_built_in_of_its_name_and_new_ones_are_added(tmp_path):
    backlog = """
[[patterns]]
name = "celery_queue_backlog"
severity = "high"
condition = { series = "celery.queue_depth", aggregate = "min", window = 120, op = ">", \
threshold = 500 }
action = { name = "celery_pool", params = { grow = 2 } }
why = "grow_workers: our queues are deep by design."
"""
    patterns = system_with(tmp_path, backlog + ORDERS_STUCK).patterns
    names = [pattern.name for pattern in patterns]

    assert names == [p.name for p in BUILTIN_PATTERNS] + ["orders_stuck"]
    replaced = patterns[names.index("celery_queue_backlog")]
    assert replaced.condition.describe() == "min(celery.queue_depth, 120s) > 500"
    assert [action.params for action in replaced.actions] == [{"grow": 2}]


def test_without_a_patterns_file_the_built_ins_are_used(tmp_path):
    assert System.from_settings(Settings(home=tmp_path)).patterns == BUILTIN_PATTERNS


def test_selfmend_patterns_shows_the_patterns_in_use_and_refuses_a_bad_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))
    monkeypatch.setenv("SELFMEND_PATTERNS_FILE", str(patterns_file(tmp_path, ORDERS_STUCK)))
    shown = CliRunner().invoke(cli, ["patterns"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "orders_stuck" in shown.output
    assert "min(shop.orders_pending, 60s) > 5" in shown.output

    patterns_file(tmp_path, ORDERS_STUCK.replace('"min"', '"p90"'))
    refused = CliRunner().invoke(cli, ["patterns"])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert "condition.aggregate" in refused.stderr


@pytest.mark.parametrize("window", ["inf", "-inf", "nan", "0"])
def test_a_window_that_is_not_a_positive_finite_number_is_refused(tmp_path, window):
    message = refusal(tmp_path, ORDERS_STUCK.replace("window = 60", f"window = {window}"))
    assert message.startswith("pattern 'orders_stuck' (patterns[0]): condition.window: ")
    assert "finite number" in message or "greater than 0" in message


def test_a_log_window_that_is_infinite_is_refused(tmp_path):
    text = """
[[patterns]]
name = "panics"
severity = "high"
condition = { kind = "log", regex = "panic", window = inf }
why = "look at it"
"""
    message = refusal(tmp_path, text)
    assert message.startswith("pattern 'panics' (patterns[0]): condition.window: ")
    assert "finite number" in message


def test_a_binary_patterns_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "patterns.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigurationError) as raised:
        read_patterns(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: is not a text file")
    assert "UTF-8" in message and "\n" not in message


def test_a_misspelt_action_parameter_is_refused_at_start_naming_the_allowed_ones(tmp_path):
    text = ORDERS_STUCK + (
        'action = { name = "set_control", params = { key = "shop.pause", valeu = true } }\n'
    )
    with pytest.raises(ConfigurationError) as raised:
        system_with(tmp_path, text)
    assert str(raised.value) == (
        f"{tmp_path / 'patterns.toml'}: pattern 'orders_stuck': action.params.valeu: is not a "
        "parameter of set_control; allowed: delta, key, max_step, maximum, minimum, value"
    )


def test_a_misspelt_parameter_of_a_second_candidate_names_its_place(tmp_path):
    text = ORDERS_STUCK + (
        'actions = [{ name = "set_control", params = { key = "shop.pause", value = true } },\n'
        '           { name = "feature_flag", params = { name = "checkout", percnt = 5 } }]\n'
    )
    with pytest.raises(ConfigurationError, match=r"actions\[1\]\.params\.percnt: is not a param"):
        system_with(tmp_path, text)


def test_the_built_in_patterns_name_only_parameters_their_actions_take(tmp_path):
    system = System.from_settings(Settings(home=tmp_path))
    models = system.catalogue.params_models()
    assert set(models) >= {"set_control", "cache_ttl", "pg_create_index", "pg_cancel_queries"}
    assert all(model is not None for name, model in models.items())
