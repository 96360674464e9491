"""The writer's Prometheus counters: heals by rule (``model`` is the model, every other rule is
deterministic) and rows by outcome."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter

from selfmend.resilience.writer.results import BatchResult

HEALS_TOTAL = Counter(
    "selfmend_writer_heals_total",
    "Input keys the resilient writer healed onto a column, in rows it wrote.",
    ["table", "rule"],
)
ROWS_TOTAL = Counter(
    "selfmend_writer_rows_total",
    "Rows the resilient writer wrote or refused, by why it refused them.",
    ["table", "outcome"],
)


def count(table: str, result: BatchResult) -> None:
    """One increment per label set per batch, not per row: a batch of clean rows costs two."""
    heals = Tally(heal.rule for row in result.written for heal in row.heals)
    for rule, number in heals.items():
        HEALS_TOTAL.labels(table, rule).inc(number)
    outcomes = Tally(getattr(row, "kind", "written") for row in result.rows)
    for outcome, number in outcomes.items():
        ROWS_TOTAL.labels(table, outcome).inc(number)
