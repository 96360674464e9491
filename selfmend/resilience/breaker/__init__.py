"""Circuit breakers whose state every process using the same name shares.

    from selfmend import client

    payments = client.breaker("payments", failure_threshold=5, reset_timeout=30)

    @payments
    def charge(order): ...

States, transitions and the storages are described in ``states.py``, ``circuit.py`` and
``storage.py``; the settings in ``settings.py``.
"""

from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker.breaker import CircuitBreaker
from selfmend.resilience.breaker.control import BreakerControl
from selfmend.resilience.breaker.events import Transition
from selfmend.resilience.breaker.memory_storage import MemoryStorage
from selfmend.resilience.breaker.registry import BreakerRegistry, registry_for
from selfmend.resilience.breaker.settings import BreakerSettings
from selfmend.resilience.breaker.storage import State

__all__ = [
    "BreakerControl",
    "BreakerRegistry",
    "BreakerSettings",
    "CircuitBreaker",
    "CircuitOpen",
    "MemoryStorage",
    "State",
    "Transition",
    "registry_for",
]
