"""Circuit breaker overhead per call in the closed state, shared through Redis: selfmend's
breaker against pybreaker with its ``CircuitRedisStorage``, on the same Redis, in one run.

    python -m bench.breaker [--redis URL] [--calls 1000] [--rounds 30]
                            [--window-size 20]

The protected function does nothing and always succeeds, so every call is a success in the
closed state (the figure issue 5 asks for) and its time is the breaker's overhead. The two
breakers take turns in short rounds, so the noise of a shared machine falls on both alike; the
ratio is the median of the rounds' ratios, each of two runs side by side.

pybreaker makes two round trips per call (it reads the state, then resets its failure
counter). selfmend's breaker counts a success in the process and sends the pending ones in one
Lua script once ``window_size`` are pending or its view is older than ``sync_seconds`` (1 s):
here one trip per ``window_size`` calls, so the figure depends on it. The default is the
breaker's own default (20), what an application that does not set it gets.
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

from selfmend.resilience.breaker import BreakerRegistry, BreakerSettings
from selfmend.resilience.breaker.redis_storage import RedisStorage
from tests import resources

NAME = "bench-breaker"


def nothing() -> None:
    return None


def ours(client: redis.Redis, window_size: int) -> Callable[[], None]:
    breaker = BreakerRegistry(RedisStorage(client)).get(
        NAME, failure_threshold=5, window_size=window_size
    )
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
    parser.add_argument(
        "--redis", help="a Redis database; default: this run's breaker DB (tests.resources)"
    )
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and breaker")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--window-size",
        type=int,
        default=BreakerSettings.model_fields["window_size"].default,
        help="selfmend's window_size: a healthy breaker sends its successes once per window",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    args.redis = args.redis or resources.redis_url("breaker")
    client = redis.Redis.from_url(args.redis)
    forget(client)
    breakers = {"selfmend": ours(client, args.window_size), "pybreaker": theirs(client)}
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
        f"{args.redis}; {args.rounds} rounds of {args.calls:,} calls; selfmend window_size "
        f"{args.window_size}; bare call {bare:.2f} µs"
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
