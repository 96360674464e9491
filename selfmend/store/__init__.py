"""selfmend's store: one object that holds a repository per concern over one engine."""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from selfmend.store.breakers import BreakerEventLog
from selfmend.store.claims import Claims
from selfmend.store.controls import ControlStore
from selfmend.store.engine import make_engine, reads
from selfmend.store.executions import ExecutionLog
from selfmend.store.gate import GateReads
from selfmend.store.heals import HealStore
from selfmend.store.incidents import IncidentStore
from selfmend.store.leases import LeaseStore
from selfmend.store.migrate import upgrade
from selfmend.store.notifications import NotificationStore
from selfmend.store.outcomes import OutcomeStore
from selfmend.store.samples import SampleStore
from selfmend.store.schema_versions import SchemaVersionStore


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.samples = SampleStore(engine)
        self.incidents = IncidentStore(engine)
        self.executions = ExecutionLog(engine)
        self.controls = ControlStore(engine)
        self.outcomes = OutcomeStore(engine)
        self.gate = GateReads(engine)
        self.claims = Claims(engine, self.executions)
        self.notifications = NotificationStore(engine)
        self.leases = LeaseStore(engine)
        self.schema_versions = SchemaVersionStore(engine)
        self.heals = HealStore(engine)
        self.breaker_events = BreakerEventLog(engine)

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> Store:
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    def reading(self) -> Connection:
        """One connection for reads in a row: a checkout from the pool costs about what a short
        read does, and the remediate and verify stages read two or three things per incident."""
        return reads(self.engine).connect()

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Store"]
