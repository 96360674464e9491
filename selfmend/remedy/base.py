"""The Action protocol: plan, apply and roll back one reversible change.

``plan`` validates the parameters, reads the current state and records how to undo; ``apply``
first checks whether the change is already in place, so a redelivered message is harmless;
``rollback`` restores what ``plan`` recorded. Errors are ``ActionError`` with a stable code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from selfmend.errors import ActionError
from selfmend.models import Risk


@dataclass(frozen=True)
class Plan:
    """What an action will do: on which target, with what parameters, and how to undo it."""

    action: str
    target: str
    params: dict[str, Any]
    undo: dict[str, Any]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Action(Protocol):
    name: str
    risk: Risk

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
