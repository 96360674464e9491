"""Admin keys and their roles: who may read, who may approve, who may stop or change things.

Keys are compared in constant time: each configured key's SHA-256 digest against the given
key's, over every configured key with no early exit, so neither a key's bytes nor its length
nor its place in the list shows in the time an answer takes.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Role(IntEnum):
    """Ordered: each role may do what the ones below it may."""

    VIEWER = 1  # read incidents, audit logs, settings
    OPERATOR = 2  # approve the actions that wait on a person
    ADMIN = 3  # kill switch, live settings and feature flags


class AdminKey(BaseModel):
    """One entry of ``SELFMEND_ADMIN_KEYS``: ``{"name": "alice", "role": "operator", "key": …}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Who, in the audit log.")
    role: Role
    key: str = Field(min_length=16, description="The secret sent as X-Admin-Key.", repr=False)

    @field_validator("role", mode="before")
    @classmethod
    def _role_by_name(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return Role[value.upper()]
            except KeyError:
                raise ValueError(
                    f"role {value!r} is not one of {[r.name.lower() for r in Role]}"
                ) from None
        return value


class KeyRing:
    def __init__(self, keys: list[AdminKey]) -> None:
        self._digests = [(hashlib.sha256(k.key.encode()).digest(), k) for k in keys]

    def holder(self, given: str | None) -> AdminKey | None:
        """The configured key equal to ``given``, or None."""
        digest = hashlib.sha256((given or "").encode()).digest()
        found = None
        for configured, key in self._digests:
            if hmac.compare_digest(digest, configured) and given:
                found = key
        return found
