"""selfmend's store: one object that holds a repository per concern over one engine."""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from selfmend.store.breakers import BreakerEventLog
from selfmend.store.claims import Claims
from selfmend.store.controls import ControlStore
from selfmend.store.engine import DatabaseTimeouts, make_engine, reads
from selfmend.store.executions import ExecutionLog
from selfmend.store.gate import GateReads
from selfmend.store.heals import HealStore
from selfmend.store.incidents import IncidentStore
from selfmend.store.leases import LeaseStore
from selfmend.store.notifications import NotificationStore
from selfmend.store.outcomes import OutcomeStore
from selfmend.store.samples import SampleStore
from selfmend.store.schema_versions import SchemaVersionStore
from selfmend.store.sensitivities import SensitivityStore
from selfmend.store.settings_read import SettingsReadStore


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
        self.settings_read = SettingsReadStore(engine)
        self.sensitivities = SensitivityStore(engine)

    @classmethod
    def from_url(
        cls, url: str, *, migrate: bool = False, timeouts: DatabaseTimeouts | None = None
    ) -> Store:
        """The store at ``url``, as it is; with ``migrate``, its schema brought to the latest
        first (``selfmend db upgrade``, the demo, tests). The application's client never
        migrates, and never loads Alembic."""
        engine = make_engine(url, timeouts)
        if migrate:
            from selfmend.store.migrate import upgrade

            upgrade(engine)
        return cls(engine)

    @classmethod
    def for_service(
        cls, url: str, *, schema_wait: float, timeouts: DatabaseTimeouts | None = None
    ) -> Store:
        """The store as a worker, beat or the admin API opens it. The embedded SQLite store is
        migrated here: every process sharing it runs on this machine from one install. A server
        store is migrated only by ``selfmend db upgrade`` (the compose ``migrate`` job), an
        explicit step of a deployment; this waits up to ``schema_wait`` seconds for it."""
        engine = make_engine(url, timeouts)
        from selfmend.store.migrate import upgrade, wait_for_schema

        if engine.dialect.name == "sqlite":
            upgrade(engine)
        else:
            wait_for_schema(engine, schema_wait)
        return cls(engine)

    def reading(self) -> Connection:
        """One connection for reads in a row: a checkout from the pool costs about what a short
        read does, and the remediate and verify stages read two or three things per incident."""
        return reads(self.engine).connect()

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Store"]
