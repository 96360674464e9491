"""Pattern files: TOML documents of ``[[patterns]]`` tables, validated into ``Pattern``s.

The built-in catalogue and the user's patterns file are read by the same code, so both pass the
same checks, and the first error names the file, the pattern (by name, else by index) and the
field. Which actions exist, and which parameters each takes, is for the running system to say,
so it calls ``check_actions`` with its catalogue's parameter models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from selfmend.detect.patterns import CONDITION_TAGS, Pattern
from selfmend.errors import ConfigurationError
from selfmend.toml_tables import (
    entry_name,
    problem,
    read_toml,
    refuse_repeated_names,
    table_entries,
)

TABLE = "patterns"


def read_patterns(path: Path) -> tuple[Pattern, ...]:
    """The patterns of a TOML file, in the file's order."""
    return parse_patterns(read_toml(path, "the patterns file"), str(path))


def parse_patterns(document: dict[str, Any], source: str) -> tuple[Pattern, ...]:
    """The patterns of a parsed document; ``source`` says where it came from in errors."""
    entries = table_entries(document, TABLE, source)
    patterns = tuple(_pattern(entry, index, source) for index, entry in enumerate(entries))
    refuse_repeated_names((p.name for p in patterns), TABLE, "pattern", source)
    return patterns


def check_actions(
    patterns: Iterable[Pattern], actions: Mapping[str, type[BaseModel] | None], source: str
) -> None:
    """Refuse a pattern whose action is not one of ``actions`` (name → its parameter model, or
    None for an action that declares none), or that gives a parameter its action does not take,
    naming the place and what is allowed."""
    for pattern in patterns:
        for index, action in enumerate(pattern.actions):
            field = "action" if len(pattern.actions) == 1 else f"actions[{index}]"
            where = f"{source}: pattern {pattern.name!r}: {field}"
            if action.name not in actions:
                raise ConfigurationError(
                    f"{where}.name: unknown action {action.name!r}; known actions: "
                    f"{', '.join(sorted(actions))}"
                )
            _check_params(action.name, action.params, actions[action.name], where)


def _check_params(
    action: str, params: Mapping[str, Any], model: type[BaseModel] | None, where: str
) -> None:
    if model is None:
        return
    allowed = set(model.model_fields) | {
        info.alias for info in model.model_fields.values() if info.alias
    }
    for name in params:
        if name not in allowed:
            raise ConfigurationError(
                f"{where}.params.{name}: is not a parameter of {action}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )


def _pattern(entry: Any, index: int, source: str) -> Pattern:
    try:
        return Pattern.model_validate(entry)
    except ValidationError as error:
        where = entry_name(entry, index, TABLE, "pattern")
        first = error.errors()[0]
        single = isinstance(entry, dict) and "action" in entry
        field = _field(first, single)
        raise ConfigurationError(f"{source}: {where}: {field}: {problem(first)}") from None


def _field(error: ErrorDetails, single_action: bool) -> str:
    """The field as written in the file: ``condition.of[1].window``, without the tag pydantic
    adds to say which kind of condition it validated against, and ``action`` where the file
    gave one fix (read as the first of ``actions``)."""
    loc = list(error["loc"])
    if loc[:1] == ["condition"] and len(loc) > 1 and loc[1] in CONDITION_TAGS:
        del loc[1]
    if single_action and loc[:2] == ["actions", 0]:
        loc[:2] = ["action"]
    elif single_action and loc[:1] == ["actions"]:
        loc[:1] = ["action"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return path.lstrip(".") or "pattern"
