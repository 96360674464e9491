"""The shop: a small real HTTP service, its own process, wired to selfmend only through
``selfmend.client`` as the README shows (live settings, the cache loader, a breaker, the log
handler, ``client.record``) and a Prometheus ``/metrics`` endpoint selfmend scrapes.

    python -m bench.lab.service   # SHOP_DB_URL, SHOP_DEPENDENCY_URL, SHOP_PORT, SELFMEND_*

Routes: ``GET /products/{id}`` (through the Redis cache), ``GET /search?sku=`` (the indexed
lookup), ``POST /orders`` (a stock write on hot rows, then a receipt task),
``GET /recommendations/{id}`` (the outside dependency behind a circuit breaker).
"""

from __future__ import annotations

import logging
import os
import time

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from bench.lab import shop_tasks
from bench.lab.shop_db import HOT_PRODUCTS, Pool
from bench.lab.vitals import Vitals
from selfmend import client

log = logging.getLogger("shop")
SERVICE = "shop"

REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds", "Time to answer a request.", ["method", "handler", "status"]
)
REQUESTS = Counter("http_requests_total", "Requests answered.", ["method", "handler", "status"])

vitals = Vitals(SERVICE)
pool = Pool(
    os.environ.get("SHOP_DB_URL", "postgresql://postgres@127.0.0.1:5432/shop"),
    size=lambda: int(client.control("db.pool_size", 10)),
    on_wait=lambda ms: client.record("db.pool_wait_ms", ms, service=SERVICE),
)
dependency_url = os.environ.get("SHOP_DEPENDENCY_URL", "http://127.0.0.1:8001")
app = FastAPI()


def query(sql: str, params: tuple) -> list[tuple]:
    with pool.connection() as connection:
        started = time.perf_counter()
        rows = connection.execute(sql, params).fetchall()
        client.record("db.query_ms", (time.perf_counter() - started) * 1000, service=SERVICE)
        return rows


@client.cache_loader("product:{id}", ttl=3600)
def load_product(id: str) -> dict:
    rows = query(
        "SELECT p.id, p.sku, p.name, p.price::float8, s.quantity, "
        "(SELECT count(*) FROM orders o WHERE o.product_id = p.id) "
        "FROM products p JOIN stock s ON s.product_id = p.id WHERE p.id = %s",
        (int(id),),
    )
    if not rows:
        raise KeyError(id)
    product_id, sku, name, price, quantity, ordered = rows[0]
    return {"id": product_id, "sku": sku, "name": name, "price": price, "stock": quantity,
            "ordered": ordered}  # fmt: skip


def _recommend(product_id: int) -> list[int]:
    timeout = float(client.control("dependency.timeout_seconds", 2.0))
    try:
        response = httpx.get(f"{dependency_url}/recommend/{product_id}", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError:
        vitals.upstream(ok=False)
        raise
    vitals.upstream(ok=True)
    return response.json()["products"]


recommend = client.breaker(
    "dependency",
    failure_rate=0.5,
    minimum_calls=10,
    slow_call_seconds=1.0,
    reset_timeout=15,
    min_processes=1,  # one web process calls it
    fallback=lambda product_id: [],  # no recommendations rather than an error
)(_recommend)


@app.middleware("http")
async def measure(request: Request, call_next) -> Response:
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        handler = "/" + request.url.path.split("/")[1]  # /products/42 -> /products
        if handler != "/metrics":
            seconds = time.perf_counter() - started
            labels = (request.method, handler, str(status))
            REQUEST_SECONDS.labels(*labels).observe(seconds)
            REQUESTS.labels(*labels).inc()
            client.record("http.request_ms", seconds * 1000, service=SERVICE)
            vitals.answered(status)


@app.get("/health")
def health() -> dict:
    return {"ok": True}


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/products/{product_id}")
def product(product_id: int) -> dict:
    return client.cached(f"product:{product_id}")


@app.get("/search")
def search(sku: str) -> list[dict]:
    rows = query("SELECT id, name FROM products WHERE sku = %s", (sku,))
    return [{"id": row[0], "name": row[1]} for row in rows]


@app.post("/orders")
def order(product_id: int, quantity: int = 1) -> dict:
    if not 1 <= product_id <= HOT_PRODUCTS:
        raise HTTPException(422, "orders are taken on the hot products only")
    rows = query(
        "WITH taken AS (UPDATE stock SET quantity = quantity - %s WHERE product_id = %s "
        "RETURNING product_id) INSERT INTO orders (product_id, quantity) "
        "SELECT product_id, %s FROM taken RETURNING id",
        (quantity, product_id, quantity),
    )
    shop_tasks.send_receipt.delay(rows[0][0])
    return {"order": rows[0][0]}


@app.get("/recommendations/{product_id}")
def recommendations(product_id: int) -> dict:
    try:
        return {"products": recommend(product_id)}
    except httpx.HTTPError as error:
        log.error("dependency call failed: %s", error)
        raise HTTPException(503, "recommendations are unavailable") from None


@app.exception_handler(Exception)
async def failed(request: Request, error: Exception) -> Response:
    log.error("%s %s failed: %r", request.method, request.url.path, error)
    return Response("internal error", status_code=500)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per dependency call
    logging.getLogger().addHandler(client.LogHandler())
    vitals.start()
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["SHOP_PORT"]), log_level="warning")


if __name__ == "__main__":
    main()
