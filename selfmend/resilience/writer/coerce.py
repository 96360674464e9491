"""Type coercion for one column: a value of the column's own type passes untouched, a string
that says the same thing safely is converted, anything else is refused with the reason.

Each column gets a ``Coercer`` once, when its table is inspected: the set of Python types that
pass as they are (the fast path a batch of clean rows takes) and a function for the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import types

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


class CoercionError(ValueError):
    """The value cannot become the column's type without guessing; the message says why."""


@dataclass(frozen=True)
class Coercer:
    passes: frozenset[type]
    convert: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        return value if type(value) in self.passes else self.convert(value)


def _refuse(value: Any, wanted: str) -> CoercionError:
    if value is None:  # None passes only for a nullable column
        return CoercionError("null, and the column is NOT NULL")
    return CoercionError(f"{value!r} ({type(value).__name__}) is not {wanted}")


def _to_int(value: Any) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise _refuse(value, "an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _refuse(value, "a number")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise _refuse(value, "a decimal number")


def _to_bool(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _refuse(value, "true or false")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _refuse(value, "an ISO 8601 date and time")


def _to_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _refuse(value, "an ISO 8601 date")


def _to_time(value: Any) -> time:
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _refuse(value, "an ISO 8601 time")


def _to_json(value: Any) -> Any:
    """A string that holds a JSON object or array is that object; any other string is kept as
    a JSON string, which is what it already is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError as error:
            raise CoercionError(
                f"{value[:40]!r} looks like JSON but does not parse: {error}"
            ) from None
    if isinstance(value, str | int | float | bool):
        return value
    raise _refuse(value, "JSON")


def _to_text(length: int | None) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise _refuse(value, "text")
        if length is not None and len(value) > length:
            raise CoercionError(f"{len(value)} characters, longer than the column's {length}")
        return value

    return convert


def _to_choice(choices: frozenset[str]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise _refuse(value, f"one of {sorted(choices)}")

    return convert


def coercer_for(column_type: types.TypeEngine, nullable: bool) -> Coercer:
    """The coercer of a reflected column type; an unknown type passes values to the database."""
    passes, convert = _rule(column_type)
    if nullable:
        passes |= {type(None)}
    return Coercer(frozenset(passes), convert or (lambda value: value))


def _rule(column_type: types.TypeEngine) -> tuple[set[type], Callable[[Any], Any] | None]:
    # Order matters: Enum is a String, Float a Numeric, DateTime and Date are unrelated.
    if isinstance(column_type, types.Boolean):
        return {bool}, _to_bool
    if isinstance(column_type, types.Integer):
        return {int}, _to_int
    if isinstance(column_type, types.Float) or (
        isinstance(column_type, types.Numeric) and not column_type.asdecimal
    ):
        return {float, int}, _to_float
    if isinstance(column_type, types.Numeric):
        return {Decimal, int}, _to_decimal
    if isinstance(column_type, types.DateTime):
        return {datetime}, _to_datetime
    if isinstance(column_type, types.Date):
        return {date}, _to_date
    if isinstance(column_type, types.Time):
        return {time}, _to_time
    if isinstance(column_type, types.Enum):
        return set(), _to_choice(frozenset(column_type.enums))
    if isinstance(column_type, types.String):
        # A string with a length bound is checked; an unbounded one passes as it is.
        return (set() if column_type.length else {str}), _to_text(column_type.length)
    if isinstance(column_type, types.JSON):
        return {dict, list}, _to_json
    return set(), None
