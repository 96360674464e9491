"""The index the shop's search by SKU uses is dropped: each search scans 200,000 rows."""

from __future__ import annotations

import psycopg

from bench.lab.faults import FaultContext
from bench.lab.shop_db import SKU_INDEX


class DroppedIndex:
    name = "dropped_index"
    broke = f"search latency (index {SKU_INDEX} dropped, sequential scans)"
    deadline = 120.0

    def __init__(self, context: FaultContext) -> None:
        self.url = context.env.shop_db_url

    def inject(self) -> dict:
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"DROP INDEX {SKU_INDEX}")
        return {"index": SKU_INDEX}

    def undo(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"CREATE INDEX IF NOT EXISTS {SKU_INDEX} ON products (sku)")
