"""Why a ``SELFMEND_*`` variable was refused, in one line that names the variable.

pydantic names the field and prints a page per error; an operator set an environment variable,
so the line names that, says what is wrong with the value and what the field allows. Values of
JSON fields and secrets are never echoed: they may hold keys.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import NoDecode, SettingsError

from selfmend.errors import ConfigurationError

_SCALARS = {float: "a number", int: "a whole number", bool: "true or false", Path: "a path"}
_BOUNDS = (
    (annotated_types.Gt, "gt", "above"),
    (annotated_types.Ge, "ge", "of at least"),
    (annotated_types.Lt, "lt", "below"),
    (annotated_types.Le, "le", "of at most"),
)
_FIELD_OF_PARSE_ERROR = re.compile(r'field "([^"]+)"')
_SHOWN_LENGTH = 60


def settings_error(error: ValidationError | SettingsError, model: type[BaseModel]) -> Exception:
    """The ``ConfigurationError`` that says, in one line, which variable to change and how."""
    prefix = str(model.model_config.get("env_prefix", ""))
    if isinstance(error, SettingsError):
        return _parse_error(error, model, prefix)
    first = error.errors()[0]
    more = error.error_count() - 1
    also = f" (and {more} more)" if more else ""
    if not first["loc"]:  # a check across fields: its message names the variables
        return ConfigurationError(f"{_problem(first)}{also}")
    name, *inner = first["loc"]
    info = model.model_fields[str(name)]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in inner)
    place = f": {where.lstrip('.')}" if where else ""
    shown = _shown(first, info)
    return ConfigurationError(
        f"{prefix.upper()}{str(name).upper()}{place}: {_problem(first)}{shown}; "
        f"allowed: {allowed(info)}{also}"
    )


def _parse_error(error: SettingsError, model: type[BaseModel], prefix: str) -> Exception:
    """pydantic-settings failed before validation: a JSON field's value is not JSON."""
    found = _FIELD_OF_PARSE_ERROR.search(str(error))
    if found is None or found[1] not in model.model_fields:
        return ConfigurationError(f"{prefix.upper()}*: {error}")
    cause = error.__cause__
    why = f": {cause.msg} at offset {cause.pos}" if isinstance(cause, json.JSONDecodeError) else ""
    info = model.model_fields[found[1]]
    return ConfigurationError(
        f"{prefix.upper()}{found[1].upper()}: is not valid JSON{why}; allowed: {allowed(info)}"
    )


def _problem(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return error["msg"][:1].lower() + error["msg"][1:]


def _shown(error: ErrorDetails, info: FieldInfo) -> str:
    """``; got 'abc'`` for a plain value, nothing for a secret or a part of a JSON value."""
    given = error.get("input")
    if len(error["loc"]) > 1 or _is_secret(info.annotation):
        return ""
    if not isinstance(given, str | int | float | bool) or len(str(given)) > _SHOWN_LENGTH:
        return ""
    return f"; got {given!r}"


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def allowed(info: FieldInfo) -> str:
    """What a field takes, in words: ``a number above 0``, ``one of observe, dry_run, auto``;
    a JSON field is described by its description, which shows the shape."""
    annotation = _without_none(info.annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(value) for value in get_args(annotation))
    if annotation in _SCALARS:
        return " ".join([_SCALARS[annotation], *_bounds(info)])
    if annotation in (str, SecretStr):
        return "text"
    if any(marker is NoDecode for marker in info.metadata):
        return "values separated by commas"
    return info.description or "JSON"


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _bounds(info: FieldInfo) -> list[str]:
    words = []
    for constraint in info.metadata:
        for kind, attribute, word in _BOUNDS:
            if isinstance(constraint, kind):
                words.append(f"{word} {getattr(constraint, attribute):g}")
    return words
