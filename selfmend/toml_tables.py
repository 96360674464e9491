"""TOML files of ``[[table]]`` entries, each validated into a pydantic model.

The patterns file and the exporters file are read by this one code, so a mistake in either is
refused alike: the first error names the file, the entry (by its name, else by its index) and
the field, and says what is wrong in words rather than pydantic's.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic_core import ErrorDetails

from selfmend.errors import ConfigurationError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed document; ``what`` names the file in errors ("the patterns file")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"{path}: is not a text file: byte {error.object[error.start]:#04x} at offset "
            f"{error.start} is not UTF-8; {what} is UTF-8 TOML"
        ) from None
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read {what}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: is not valid TOML: {error}") from None


def table_entries(document: dict[str, Any], table: str, source: str) -> list[Any]:
    """The entries of the document's one ``[[table]]``; any other key is refused."""
    unknown = sorted(set(document) - {table})
    if unknown:
        raise ConfigurationError(
            f"{source}: {unknown[0]}: is not a known key; the file holds [[{table}]] tables only"
        )
    entries = document.get(table, [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: {table}: must be an array of tables, [[{table}]]")
    return entries


def entry_name(entry: Any, index: int, table: str, noun: str) -> str:
    """An entry as an error names it: ``pattern 'x' (patterns[2])``, or ``patterns[2]``."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"{noun} {name!r} ({table}[{index}])" if name else f"{table}[{index}]"


def problem(error: ErrorDetails) -> str:
    """What is wrong with a field, in words: "is required", "is not a known key"..."""
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known key"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    message = error["msg"][:1].lower() + error["msg"][1:]
    given = error["input"]
    if isinstance(given, str | int | float | bool):
        return f"{message}; got {given!r}"
    return message


def refuse_repeated_names(names: Iterable[str], table: str, noun: str, source: str) -> None:
    first_index: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first_index:
            raise ConfigurationError(
                f"{source}: {noun} {name!r} ({table}[{index}]): name: is already given by "
                f"{table}[{first_index[name]}]"
            )
        first_index[name] = index
