"""``docs/patterns.md``, generated from the built-in catalogue so that it cannot drift from it.

    python -m selfmend.detect.catalogue_doc    # rewrite docs/patterns.md

A unit test renders the page again and fails when the file differs from it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import get_args

from selfmend.collect import celery_queues, postgres, redis
from selfmend.detect.aggregates import exact
from selfmend.detect.baseline import Learn
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.pattern_file import parse_patterns
from selfmend.detect.patterns import Aggregate, Comparison, LogCondition, Pattern

DOC_FILE = Path(__file__).parents[2] / "docs" / "patterns.md"

# A pattern is listed under the area of the first series it reads.
AREAS = {
    "postgres": "PostgreSQL",
    "db": "PostgreSQL",
    "cache": "The application's cache",
    "redis": "Redis",
    "celery": "Celery",
    "http": "HTTP services",
    "process": "Worker processes",
}
OTHER = "Other series"
LOGS = "Error logs"
COLLECTORS = {
    "Redis collector": redis.SERIES,
    "PostgreSQL collector": postgres.SERIES,
    "Celery collector": celery_queues.SERIES,
}
PUSHED = "the application (`client.record`)"

EXAMPLE = """\
[[patterns]]  # same name as a built-in: replaces it
name = "celery_queue_backlog"
severity = "high"
condition = { series = "celery.queue_depth", labels = { queue = "orders" }, aggregate = "min", \
window = 120, op = ">", threshold = 500 }
action = { name = "celery_pool", params = { grow = 2 } }
why = "grow_workers: orders waited two minutes; two more processes drain them."

[[patterns]]  # a new pattern over two series
name = "orders_stuck"
severity = "critical"
condition = { kind = "all", of = [
    { series = "shop.orders_pending", aggregate = "min", window = 300, op = ">", threshold = 50 },
    { series = "shop.orders_per_sec", aggregate = "max", window = 300, op = "<", threshold = 0.1 },
] }
why = "check_payments: orders pile up and none completes; a person checks the payment provider."

[[patterns]]
name = "payment_declined"
severity = "medium"
condition = { kind = "log", regex = "payment .* declined", window = 300 }
why = "check_payments: the payment provider declines payments."
"""


def render() -> str:
    parse_patterns(tomllib.loads(EXAMPLE), "the example")  # an example that fails cannot ship
    patterns = BUILTIN_PATTERNS
    fixed = sum(bool(pattern.actions) for pattern in patterns)
    lines = [
        "# Pattern catalogue",
        "",
        "<!-- Generated from selfmend/detect/catalogue.toml by "
        "`python -m selfmend.detect.catalogue_doc`: edit those, not this page. -->",
        "",
        f"selfmend ships {len(patterns)} built-in patterns. {fixed} have an automatic fix; the "
        "others open an incident that is escalated to a person, and their *why* starts with the "
        "fix a person (or a later action) applies.",
        "",
        "A pattern fires when its condition held for its whole window: `max(x, 60s) < 0.8` reads "
        '"below 0.8 for the last 60 s", and the samples must span at least half the window. '
        "`rate` is the per-second increase of a counter. Conditions joined by *and* (`all`) "
        "fire on the series of the first, when the others hold on series whose shared labels "
        "(`instance`, `database`, ...) have the same values; *or* (`any`) fires on any. "
        "A pattern with *unless* does not fire while that condition holds on any series.",
        "",
        *_learned_section(),
    ]
    for area, members in _by_area(patterns).items():
        lines += [f"## {area}", "", *_pattern_table(members), ""]
    lines += ["## Series the patterns read", "", *_series_table(patterns), ""]
    lines += _user_patterns_section()
    return "\n".join(lines)


def _learned_section() -> list[str]:
    """What ``learned`` means, with the defaults and the reason each holds for series in
    general, read from the model so the page cannot drift from it."""
    lines = [
        "A limit written `learned` is the series' own: the same aggregate over its past windows "
        "(the current one left out, so a fault does not teach itself, and those during an "
        "incident on the series, so an earlier fault does not become its usual either) gives a "
        "median and a usual edge, and the pattern fires past `max(edge, median * (1 + change), "
        "median + floor)` (for `<`, the mirror image). A series fires on its band only once it "
        "has shown its usual behaviour for the warm-up, incidents not counted; `min(learned, "
        "5000)` adds a hard limit a person set, which fires whatever the band. The incident "
        "records the limit it was judged against, and the fix is verified against that limit. "
        "`learned(floor=0.05)` names the fields a pattern sets apart from these defaults:",
        "",
        "| field | default | why |",
        "| --- | --- | --- |",
    ]
    for name, field in Learn.model_fields.items():
        lines.append(_row([f"`{name}`", exact(float(field.default)), field.description or ""]))
    return [*lines, ""]


def _by_area(patterns: Iterable[Pattern]) -> dict[str, list[Pattern]]:
    areas: dict[str, list[Pattern]] = {area: [] for area in [*AREAS.values(), OTHER, LOGS]}
    for pattern in patterns:
        metrics = pattern.condition.metric_conditions()
        area = AREAS.get(metrics[0].series.split(".")[0], OTHER) if metrics else LOGS
        areas[area].append(pattern)
    return {area: members for area, members in areas.items() if members}


def _pattern_table(patterns: list[Pattern]) -> list[str]:
    rows = ["| pattern | condition | severity | fix | why |", "| --- | --- | --- | --- | --- |"]
    for pattern in patterns:
        fix = " or ".join(f"`{a.describe()}`" for a in pattern.actions) or "escalate"
        condition = f"`{pattern.condition.describe()}`"
        if pattern.unless is not None:
            condition += f" unless `{pattern.unless.describe()}`"
        cells = [f"`{pattern.name}`", condition, pattern.severity]
        rows.append(_row([*cells, fix, pattern.why]))
    return rows


def _series_table(patterns: Iterable[Pattern]) -> list[str]:
    readers: dict[str, list[str]] = {}
    for pattern in patterns:
        for metric in pattern.reads():
            readers.setdefault(metric.series, []).append(f"`{pattern.name}`")
    rows = ["| series | measured by | read by |", "| --- | --- | --- |"]
    for series in sorted(readers):
        source = next((name for name, emitted in COLLECTORS.items() if series in emitted), PUSHED)
        rows.append(_row([f"`{series}`", source, ", ".join(dict.fromkeys(readers[series]))]))
    return rows


def _user_patterns_section() -> list[str]:
    aggregates = ", ".join(f"`{name}`" for name in get_args(Aggregate))
    ops = ", ".join(f"`{op}`" for op in get_args(Comparison))
    return [
        "## Your own patterns",
        "",
        "Set `SELFMEND_PATTERNS_FILE` to a TOML file of `[[patterns]]` tables. A pattern with a "
        "built-in's name replaces it; any other is added. The file is read when selfmend starts "
        "(and by `selfmend patterns`), and the first mistake stops the start with an error that "
        "names the file, the pattern and the field.",
        "",
        "- `name`: lower case, digits and `_`; `severity`: `low`, `medium`, `high` or "
        "`critical`; `why`: required, one line.",
        f"- `condition`: `{{ series, labels, aggregate, window, op, threshold }}`, with "
        f'`aggregate` one of {aggregates} and `op` one of {ops}; `{{ kind = "all" | "any", '
        'of = [two or more of those] }`; or `{ kind = "log", regex, level, window }` '
        f"(`level` defaults to `{LogCondition.model_fields['level'].default}`, the regular "
        "expression ignores case). `window` is in seconds; `threshold` is a finite number. "
        "Instead of a threshold, or beside it as a hard limit, `learn = {}` judges each series "
        "against its own band, with any of the fields above: `learn = { floor = 0.05 }`.",
        "- `unless`: a metric condition; the pattern does not fire while it holds on any series.",
        "- `action`: `{ name, params, risk }`, naming an action of the catalogue in the README; "
        "or `actions`: a list of them, candidates ranked by how often each fixed this pattern "
        "before (untried ones in the order given) and tried in turn while verification fails. "
        "Leave both out and the incident goes to a person. A log pattern has no series to "
        "verify a fix on, so it takes no action.",
        "",
        "```toml",
        EXAMPLE.rstrip("\n"),
        "```",
        "",
    ]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def main() -> None:
    DOC_FILE.parent.mkdir(exist_ok=True)
    DOC_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC_FILE}")


if __name__ == "__main__":
    main()
