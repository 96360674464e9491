"""The Action protocol: plan, apply and roll back one reversible change.

``plan`` validates the parameters, reads the current state and records how to undo; ``apply``
first checks whether the change is already in place, so a redelivered message is harmless;
``rollback`` restores what ``plan`` recorded. Errors are ``ActionError`` with a stable code.
An action whose risk depends on what it found (an index on a big table) says so in the plan's
``risk``, which raises the action's own risk for that plan and never lowers it.
An action may name its pydantic parameter model as ``params_model``: a pattern that gives it a
parameter the model does not have is then refused when the patterns load, not mid-incident.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from selfmend.errors import ActionError
from selfmend.models import Risk, parse_series_key


@dataclass(frozen=True)
class Plan:
    """What an action will do: on which target, with what parameters, and how to undo it."""

    action: str
    target: str
    params: dict[str, Any]
    undo: dict[str, Any]
    summary: str
    risk: Risk | None = None  # this plan's risk, when above the action's own

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Action(Protocol):
    name: str
    risk: Risk
    reversible: bool  # False: rollback changes nothing (a cancelled query stays cancelled)

    def plan(self, params: dict[str, Any]) -> Plan: ...

    def apply(self, plan: Plan) -> dict[str, Any]: ...

    def rollback(self, plan: Plan) -> dict[str, Any]: ...


M = TypeVar("M", bound=BaseModel)


def parse_params(model: type[M], action: str, params: dict[str, Any]) -> M:
    """Validate an action's parameters; the error names the action and the field."""
    try:
        return model.model_validate(params)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "params"
        raise ActionError(f"{action}: params.{field}: {first['msg']}") from error


_LABEL = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
LIMIT = "limit"  # "{limit}": the limit the incident crossed, not a label


def with_labels(
    action: str, params: dict[str, Any], target: str, limit: float | None = None
) -> dict[str, Any]:
    """The parameters with each ``"{label}"`` value (in a list too) taken from the incident's
    series labels, so one pattern acts on the database, task or worker its incident is about;
    and ``"{limit}"``, the limit the incident's series crossed, so an action's bound is the
    pattern's (a learned limit moves with its series: a task over its worker's usual time is
    stuck, one merely over a fixed minute may be that worker's habit)."""
    _, labels = parse_series_key(target)

    def bound(key: str, value: Any) -> Any:
        if isinstance(value, list):
            return [bound(key, item) for item in value]
        placeholder = _LABEL.match(value) if isinstance(value, str) else None
        if placeholder is None:
            return value
        if placeholder[1] == LIMIT:
            if limit is None:
                raise ActionError(f"{action}: params.{key}: the incident recorded no limit")
            return limit
        if placeholder[1] not in labels:
            raise ActionError(
                f"{action}: params.{key}: the incident's series {target} has no label "
                f"{placeholder[1]!r}"
            )
        return labels[placeholder[1]]

    return {key: bound(key, value) for key, value in params.items()}
