"""Exporter mapping files: TOML documents of ``[[exporters]]`` tables, each naming the latency
histogram and the requests counter of one exporter's HTTP metrics.

The shipped file (``exporters.toml``) and the user's (``SELFMEND_EXPORTERS_FILE``) are read by
the same code, so both pass the same checks, and the first error names the file, the entry (by
name, else by index) and the field, as a patterns file's errors do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfmend.errors import ConfigurationError
from selfmend.toml_tables import (
    entry_name,
    problem,
    read_toml,
    refuse_repeated_names,
    table_entries,
)

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
    return parse_exporters(read_toml(path, "the exporters file"), str(path))


def parse_exporters(document: dict[str, Any], source: str) -> tuple[Exporter, ...]:
    entries = table_entries(document, TABLE, source)
    exporters = tuple(_exporter(entry, index, source) for index, entry in enumerate(entries))
    refuse_repeated_names((e.name for e in exporters), TABLE, "exporter", source)
    return exporters


def _exporter(entry: Any, index: int, source: str) -> Exporter:
    try:
        return Exporter.model_validate(entry)
    except ValidationError as error:
        where = entry_name(entry, index, TABLE, "exporter")
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"]))
        place = f"{field}: " if field else ""
        raise ConfigurationError(f"{source}: {where}: {place}{problem(first)}") from None
