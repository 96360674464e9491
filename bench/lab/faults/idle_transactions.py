"""Sessions that BEGIN, read, and then sit idle inside their transactions, as a leaking
application's do: they hold connections and keep vacuum from cleaning up."""

from __future__ import annotations

from bench.lab.faults import FaultContext
from bench.lab.faults.sessions import Sessions

COUNT = 20


class IdleTransactions:
    name = "idle_transactions"
    broke = f"{COUNT} connections idle in transaction"
    deadline = 150.0  # idleness is judged over minutes, not seconds

    def __init__(self, context: FaultContext) -> None:
        self.sessions = Sessions(context.env.shop_db_url, "lab-idle")

    def inject(self) -> dict:
        for _ in range(COUNT):
            self.sessions.add("SELECT 1")  # not autocommit: a transaction stays open
        return {"sessions": COUNT}

    def undo(self) -> None:
        self.sessions.close()
