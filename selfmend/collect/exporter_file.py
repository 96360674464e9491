"""Exporter mapping files: TOML documents of ``[[exporters]]`` tables, each naming the latency
histogram and the requests counter of one exporter's HTTP metrics.

The shipped file (``exporters.toml``) and the user's (``SELFMEND_EXPORTERS_FILE``) are read by
the same code, so both pass the same checks, and the first error names the file, the entry (by
name, else by index) and the field, as a patterns file's errors do.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from selfmend.errors import ConfigurationError

SHIPPED = Path(__file__).with_name("exporters.toml")
TABLE = "exporters"
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"


class Exporter(BaseModel):
    """One exporter's HTTP metrics, by the names they have in a scrape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    histogram: str | None = Field(None, pattern=METRIC_NAME)
    unit: Literal["seconds", "milliseconds"] = "seconds"
    counter: str | None = Field(None, pattern=METRIC_NAME)
    status_labels: tuple[str, ...] = Field(("status", "code", "status_code"), min_length=1)

    @model_validator(mode="after")
    def _measures_something(self) -> Exporter:
        if self.histogram is None and self.counter is None:
            raise ValueError("give a histogram, a counter or both")
        return self


def read_exporters(user_file: Path | None) -> tuple[Exporter, ...]:
    """The user's entries, then the shipped ones: a user's entry for the same metrics wins."""
    user = read_exporter_file(user_file) if user_file else ()
    return user + read_exporter_file(SHIPPED)


def read_exporter_file(path: Path) -> tuple[Exporter, ...]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ConfigurationError(f"{path}: cannot read the exporters file: {why}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: is not valid TOML: {error}") from None
    return parse_exporters(document, str(path))


def parse_exporters(document: dict[str, Any], source: str) -> tuple[Exporter, ...]:
    unknown = sorted(set(document) - {TABLE})
    if unknown:
        raise ConfigurationError(
            f"{source}: {unknown[0]}: is not a known key; the file holds [[{TABLE}]] tables only"
        )
    entries = document.get(TABLE, [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: {TABLE}: must be an array of tables, [[{TABLE}]]")
    exporters = tuple(_exporter(entry, index, source) for index, entry in enumerate(entries))
    first_index: dict[str, int] = {}
    for index, exporter in enumerate(exporters):
        if exporter.name in first_index:
            raise ConfigurationError(
                f"{source}: exporter {exporter.name!r} ({TABLE}[{index}]): name: is already "
                f"given by {TABLE}[{first_index[exporter.name]}]"
            )
        first_index[exporter.name] = index
    return exporters


def _exporter(entry: Any, index: int, source: str) -> Exporter:
    try:
        return Exporter.model_validate(entry)
    except ValidationError as error:
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"exporter {name!r} ({TABLE}[{index}])" if name else f"{TABLE}[{index}]"
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"]))
        place = f"{field}: " if field else ""
        raise ConfigurationError(f"{source}: {where}: {place}{_problem(first)}") from None


def _problem(error: ErrorDetails) -> str:
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
