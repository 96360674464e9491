"""Column-name healing for one table: which column each input key means, and by which rule.

Steps, first match wins: exact, normalised (case, camel/snake, separators), learned rules,
synonyms, then the model. A step that finds two columns for a key, or a row whose keys land
twice on one column, is an error for the row, never a guess; a rejected (key, column) is
skipped by every step. A plan is made once per set of input keys and reused for every row
that has them, so a clean batch pays one dictionary lookup per row.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfmend.resilience.writer.coerce import CoercionError
from selfmend.resilience.writer.columns import TableSchema
from selfmend.resilience.writer.model import ModelNamer, ModelUnavailable
from selfmend.resilience.writer.names import Synonyms, normalised
from selfmend.resilience.writer.results import Heal

MAX_PLANS = 1024


class RowProblem(Exception):
    """Why one row cannot be written; becomes the row's ``RowError``."""

    def __init__(self, field: str | None, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Plan:
    # (input key, column, types that pass as they are, conversion for the rest)
    steps: tuple[tuple[str, str, frozenset[type], Callable[[Any], Any]], ...]
    heals: tuple[Heal, ...]
    problem: RowProblem | None = None

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as the table's columns, coerced; raises ``RowProblem`` naming the column.

        The hot loop of a batch: the coercer's fast path is inlined, one type check a value.
        """
        if self.problem is not None:
            raise self.problem
        values = {}
        try:
            for key, column, passes, convert in self.steps:
                value = row[key]
                values[column] = value if type(value) in passes else convert(value)
        except CoercionError as error:
            raise RowProblem(column, str(error), "coercion") from None
        return values


class Healer:
    def __init__(
        self,
        schema: TableSchema,
        *,
        learned: dict[str, str],
        rejected: frozenset[tuple[str, str]],
        synonyms: Synonyms,
        model: ModelNamer | None = None,
        on_model_answer: Callable[[str, str], None] = lambda key, column: None,
    ) -> None:
        self.schema = schema
        self.learned = learned
        self.rejected = rejected
        self.synonyms = synonyms
        self.model = model
        self.on_model_answer = on_model_answer
        self._by_normalised = _index(schema.columns, normalised)
        self._by_synonym = _index(schema.columns, synonyms.form)
        self._plans: dict[tuple[tuple[str, ...], bool], Plan] = {}
        self._model_answers: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def plan(self, keys: tuple[str, ...], *, complete: bool) -> Plan:
        """The plan for rows with ``keys``; ``complete`` (an insert) also requires every
        NOT NULL column without a default."""
        cached = self._plans.get((keys, complete))
        if cached is not None:
            return cached
        try:
            plan, reusable = self._make(keys, complete), True
        except ModelUnavailable:  # not cached: the next batch asks again
            plan, reusable = (
                Plan((), (), RowProblem(None, "the model is unavailable", "model")),
                False,
            )
        except RowProblem as problem:
            plan, reusable = Plan((), (), problem), True
        if reusable:
            with self._lock:
                if len(self._plans) >= MAX_PLANS:
                    self._plans.clear()
                self._plans[(keys, complete)] = plan
        return plan

    def _make(self, keys: tuple[str, ...], complete: bool) -> Plan:
        matches = {key: self._match(key) for key in keys}
        claimed: dict[str, list[str]] = defaultdict(list)
        for key, (column, _rule) in matches.items():
            claimed[column].append(key)
        for column, claimants in claimed.items():
            if len(claimants) > 1:
                raise RowProblem(
                    column,
                    f"keys {', '.join(map(repr, claimants))} would all be written to column "
                    f"{column!r}; send one of them",
                    "ambiguous_heal",
                )
        if complete and (missing := self.schema.required - claimed.keys()):
            raise RowProblem(
                sorted(missing)[0],
                f"missing required column(s) {', '.join(sorted(missing))}",
                "missing_column",
            )
        columns = self.schema.columns
        steps = tuple(
            (key, column, columns[column].coerce.passes, columns[column].coerce.convert)
            for key, (column, _) in matches.items()
        )
        heals = tuple(
            Heal(key, column, rule) for key, (column, rule) in matches.items() if rule != "exact"
        )
        return Plan(steps, heals)

    def _match(self, key: str) -> tuple[str, str]:
        if key in self.schema.columns:
            return key, "exact"
        for rule, candidates in (
            ("normalised", self._by_normalised.get(normalised(key), ())),
            (
                "learned",
                (self.learned[key],) if self.learned.get(key) in self.schema.columns else (),
            ),
            ("synonym", self._by_synonym.get(self.synonyms.form(key), ())),
        ):
            allowed = [column for column in candidates if (key, column) not in self.rejected]
            if len(allowed) > 1:
                raise RowProblem(
                    key,
                    f"matches columns {', '.join(map(repr, allowed))} ({rule}); rename the key",
                    "ambiguous_heal",
                )
            if allowed:
                return allowed[0], rule
        column = self._ask_model(key)
        if column is not None:
            return column, "model"
        raise RowProblem(key, f"matches no column of {self.schema.name!r}", "unknown_column")

    def _ask_model(self, key: str) -> str | None:
        """The model's column for ``key`` if it names a real, not rejected column of this
        table; the answer is only ever compared with the inspected names."""
        if self.model is None:
            return None
        if key not in self._model_answers:
            answer = self.model.column_for(self.schema.name, key, sorted(self.schema.columns))
            valid = answer in self.schema.columns and (key, answer) not in self.rejected
            self._model_answers[key] = answer if valid else None
            if valid:
                self.on_model_answer(key, answer)
        return self._model_answers[key]


def _index(columns: dict[str, Any], form: Callable[[str], str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = defaultdict(list)
    for name in columns:
        index[form(name)].append(name)
    return {key: tuple(names) for key, names in index.items()}
