"""A shared breaker through a Redis outage: a private ``redis-server`` (tests/integration/
private_redis.py) is shut down under it and started again. While Redis is down the breaker
counts in the process and opens on its threshold, saying so once; once Redis answers, the
process follows the shared state again."""

from __future__ import annotations

import pytest
import structlog

from selfmend.config import Settings
from selfmend.resilience.breaker import BreakerRegistry, State
from selfmend.resilience.breaker.registry import shared_storage
from tests.breaker_calls import call_many

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_breaker_opens_while_redis_is_down_and_follows_the_shared_state_once_it_is_back(
    private_redis,
):
    settings = Settings(redis_url=f"{private_redis.url}/0")
    here = BreakerRegistry(shared_storage(settings, store=None))
    elsewhere = BreakerRegistry(shared_storage(settings, store=None))  # another process's
    breaker = here.get("payments", failure_threshold=5, window_size=10, reset_timeout=60)
    assert breaker.call(lambda: "served") == "served"

    private_redis.shut_down()
    with structlog.testing.capture_logs() as logged:
        assert call_many(breaker, 50) == {"failed": 5, "refused": 45}
    assert breaker.state is State.OPEN
    warned = [entry["event"] for entry in logged if entry["log_level"] != "info"]
    assert warned == ["breaker.storage_unreachable"]
    assert not any("exc_info" in entry for entry in logged)

    private_redis.start()
    # The fleet never saw this process's failures (it was one process); an operator now holds
    # the shared breaker closed, and this process, back on Redis, follows.
    elsewhere.control.hold("payments", State.FORCED_CLOSED, actor="ops", reason="test")
    wait_for(lambda: breaker.state is State.FORCED_CLOSED, timeout=20, every=0.1)
    assert breaker.call(lambda: "served") == "served"
    assert here.control.state("payments").state is State.FORCED_CLOSED
