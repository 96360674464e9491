"""What selfmend recorded, read from its store's tables (``selfmend/store/tables.py``) as the
scorer's records: the only part of selfmend the lab reads besides its README's interfaces."""

from __future__ import annotations

from sqlalchemy import create_engine, select

from bench.lab.score import Execution, Incident, Verification
from selfmend.store.tables import executions, incidents, verifications


class StoreRecords:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def incidents(self) -> list[Incident]:
        query = select(incidents.c.id, incidents.c.pattern, incidents.c.target,
                       incidents.c.opened_at)  # fmt: skip
        with self.engine.connect() as connection:
            return [Incident(*row) for row in connection.execute(query)]

    def executions(self) -> list[Execution]:
        query = select(executions.c.incident_id, executions.c.action, executions.c.state,
                       executions.c.created_at, executions.c.reason)  # fmt: skip
        with self.engine.connect() as connection:
            return [Execution(*row) for row in connection.execute(query)]

    def verifications(self) -> list[Verification]:
        query = select(verifications.c.incident_id, verifications.c.verdict,
                       verifications.c.created_at)  # fmt: skip
        with self.engine.connect() as connection:
            return [Verification(*row) for row in connection.execute(query)]

    def fixed_since(self, since: float) -> bool:
        """Whether a fix of an incident opened since ``since`` was verified: the run ends a fault
        soon after. An earlier fault's late verdict says nothing of this one."""
        opened = select(incidents.c.id).where(incidents.c.opened_at >= since)
        query = select(verifications.c.id).where(
            verifications.c.verdict == "fixed",
            verifications.c.created_at >= since,
            verifications.c.incident_id.in_(opened),
        )
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def close(self) -> None:
        self.engine.dispose()
