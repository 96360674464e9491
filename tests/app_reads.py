"""The application reading its live settings as a real one does: through its client, whose
report of the keys it read the collect stage stores. set_control changes only a setting some
application reads, so a test that has selfmend change one has the application read it first."""

from __future__ import annotations

from typing import Any

from selfmend.client.core import Client
from selfmend.client.live import MAX_KEYS_NOTED
from selfmend.collect.push import PushCollector, push_buffer
from selfmend.config import Settings
from selfmend.store import Store
from selfmend.system import System


def app_reads(settings: Settings, store: Store, *keys: str, default: Any = None) -> None:
    """An application of ``settings`` reads ``keys`` (an unset one as ``default``, which its
    first read stores), its client sends, and the collect stage drains the push buffer."""
    client = Client(settings, store=store)
    try:
        for number, key in enumerate(keys, 1):
            client.control(key, default)
            if number % MAX_KEYS_NOTED == 0:
                client.flush()  # the client notes this many keys between two reports
    finally:
        client.close()
    PushCollector(
        push_buffer(settings, store), store, max_skew=settings.max_clock_skew_seconds
    ).drain()


def app_reads_what_its_fixes_change(system: System, default: Any = None) -> None:
    """The application reads every setting the set_control fixes of ``system``'s patterns
    change, as the service those patterns describe does (an unset one as ``default``)."""
    keys = {
        spec.params["key"]
        for pattern in system.patterns
        for spec in pattern.actions
        if spec.name == "set_control"
    }
    app_reads(system.settings, system.store, *sorted(keys), default=default)
