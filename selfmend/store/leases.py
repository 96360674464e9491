"""Leases in the store: one holder at a time, renewed while it lives, taken over when it lapses.

The beat holds one so that a second beat started by mistake (or a new one during a rolling
deploy) schedules nothing while the first lives. Each takeover raises the lease's epoch, and
the beat stamps its messages with it: a stage sent by a beat that lost its lease (paused,
partitioned) finds a newer epoch and does nothing. The store serves this as well as Redis
would: a beat renews every few seconds, and the update is one conditional statement, atomic
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from selfmend.store.tables import leases


class LeaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def hold(self, name: str, holder: str, seconds: float) -> int | None:
        """Take or renew the lease for ``seconds``; its epoch if ``holder`` holds it now, None
        while another holder's lease runs."""
        now = time.time()
        with self.engine.begin() as connection:
            renewed = connection.execute(
                update(leases)
                .where(leases.c.name == name)
                .where((leases.c.holder == holder) | (leases.c.expires_at < now))
                .values(
                    epoch=case(
                        (leases.c.holder == holder, leases.c.epoch), else_=leases.c.epoch + 1
                    ),
                    holder=holder,
                    expires_at=now + seconds,
                )
                .returning(leases.c.epoch)
            ).scalar()
            if renewed is not None:
                return renewed
            created = connection.execute(
                self._insert(leases)
                .values(name=name, holder=holder, epoch=1, expires_at=now + seconds)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(leases.c.epoch)
            ).scalar()
        return created

    def epoch(self, name: str) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(select(leases.c.epoch).where(leases.c.name == name)).scalar()

    def holder(self, name: str) -> str | None:
        with self.engine.connect() as connection:
            query = select(leases.c.holder).where(leases.c.name == name)
            return connection.execute(query).scalar()

    def release(self, name: str, holder: str) -> None:
        """Let the lease lapse now, so the next holder need not wait for it to run out."""
        with self.engine.begin() as connection:
            connection.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=0.0)
            )
