"""Circuit breaker overhead per call in the closed state, shared through Redis: selfmend's
breaker against pybreaker with its ``CircuitRedisStorage``, on the same Redis, in one run.

    python -m bench.breaker [--redis redis://127.0.0.1:6379/3] [--calls 1000] [--rounds 30]

The protected function does nothing, so a call's time is the breaker's overhead. The two
breakers take turns in short rounds, so the noise of a shared machine falls on both alike; the
ratio is the median of the rounds' ratios, each of two runs side by side. selfmend's breaker
makes one round trip per call (the outcome recorded and the state returned by one Lua script);
pybreaker makes two (it reads the state, then resets its failure counter).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from collections.abc import Callable

import pybreaker
import redis
import structlog

from selfmend.resilience.breaker import BreakerRegistry
from selfmend.resilience.breaker.redis_storage import RedisStorage

NAME = "bench-breaker"


def nothing() -> None:
    return None


def ours(client: redis.Redis) -> Callable[[], None]:
    breaker = BreakerRegistry(RedisStorage(client)).get(NAME, failure_threshold=5, window_size=100)
    return lambda: breaker.call(nothing)


def theirs(client: redis.Redis) -> Callable[[], None]:
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=NAME)
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30, state_storage=storage)
    return lambda: breaker.call(nothing)


def per_call_us(call: Callable[[], None], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - began) / calls * 1e6


def forget(client: redis.Redis) -> None:
    """Remove both breakers' keys (and nothing else in the database)."""
    for pattern in (f"selfmend:breaker:{{{NAME}}}*", f"pybreaker:{NAME}*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and breaker")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    client = redis.Redis.from_url(args.redis)
    forget(client)
    breakers = {"selfmend": ours(client), "pybreaker": theirs(client)}
    for call in breakers.values():
        per_call_us(call, 200)  # connect, load the scripts
    figures: dict[str, list[float]] = {name: [] for name in breakers}
    for _ in range(args.rounds):
        for name, call in breakers.items():
            figures[name].append(per_call_us(call, args.calls))
    forget(client)
    bare = per_call_us(nothing, args.calls)
    print(
        f"machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, Redis {client.info('server')['redis_version']} at "
        f"{args.redis}; {args.rounds} rounds of {args.calls:,} calls; bare call {bare:.2f} µs"
    )
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(
            f"{name}: {medians[name]:.1f} µs per call (rounds {min(values):.1f}-{max(values):.1f})"
        )
    ratios = sorted(
        theirs / ours
        for ours, theirs in zip(figures["selfmend"], figures["pybreaker"], strict=True)
    )
    print(
        f"ratio pybreaker / selfmend, median of {args.rounds} rounds: "
        f"{statistics.median(ratios):.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )


if __name__ == "__main__":
    main()
