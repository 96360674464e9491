"""Turn the model's repeated column heals into deterministic rules, for the weekly optimizer.

A (database, table, key → column) the model answered ``min_seen`` times and no person rejected
becomes a learned rule: writers heal it from then on without the model (and its latency, cost
and breaker). Writers in every process reload rules when they change.
"""

from __future__ import annotations

import structlog

from selfmend.store import Store
from selfmend.store.heals import HealRule

log = structlog.get_logger(__name__)

ACTOR = "selfmend.optimize"


def promote_model_heals(store: Store, min_seen: int) -> list[HealRule]:
    """Learn every model heal seen at least ``min_seen`` times; the rules promoted now."""
    promoted = store.heals.promote(min_seen, ACTOR)
    for rule in promoted:
        log.info(
            "writer.rule_learned",
            database=rule.database,
            table=rule.table_name,
            key=rule.source_key,
            column=rule.column_name,
            model_seen=rule.model_seen,
        )
    return promoted
