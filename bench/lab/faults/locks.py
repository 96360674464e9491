"""A transaction locks the stock rows of the hot products and holds them: every order waits on
it until the shop's statement timeout, and the waiting orders take the shop's pool with them."""

from __future__ import annotations

from bench.lab.faults import FaultContext
from bench.lab.faults.sessions import Sessions
from bench.lab.shop_db import HOT_PRODUCTS


class LockContention:
    name = "lock_contention"
    broke = f"orders (stock rows of products 1-{HOT_PRODUCTS} locked FOR UPDATE)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.sessions = Sessions(context.env.shop_db_url, "lab-locker")

    def inject(self) -> dict:
        self.sessions.add(f"SELECT * FROM stock WHERE product_id <= {HOT_PRODUCTS} FOR UPDATE")
        return {"rows_locked": HOT_PRODUCTS}

    def undo(self) -> None:
        self.sessions.close()
