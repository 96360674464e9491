"""Task argument models: a call with wrong arguments fails before anything is written."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfmend.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class IncidentArgs(_Arguments):
    incident_id: int = Field(ge=1)


class ShardArgs(_Arguments):
    shard: int | None = Field(None, ge=0)


class RemediationArgs(_Arguments):
    """The JSON result of ``selfmend.remediate``, as ``selfmend.verify`` receives it."""

    incident_id: int = Field(ge=1)
    decision: str
    reason: str
    action: str | None = None
    execution_id: int | None = None
    applied_at: float | None = None


def parse(model: type[M], task: str, **arguments: Any) -> M:
    try:
        return model.model_validate(arguments)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInput(f"{task}: {problems}") from None
