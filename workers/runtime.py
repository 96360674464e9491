"""The per-process System the tasks use, built lazily and rebuilt after a fork."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery

from selfmend.config import Settings
from selfmend.system import System
from workers.watched import celery_parts

_system: System | None = None
_lock = threading.Lock()


def build(app: Celery, settings: Settings | None = None, **parts: Any) -> System:
    """The System with the parts only a Celery app gives (pools, task control, queue probe,
    registered tasks, beat schedule), on the application's workers when its broker is set;
    ``parts`` replace any of them, or the patterns."""
    settings = settings or app.selfmend_settings
    return System.from_settings(settings, **{**celery_parts(app, settings), **parts})


def system() -> System:
    global _system
    with _lock:
        if _system is None:
            from workers import app

            _system = build(app)
        return _system


def install(prepared: System) -> None:
    """Use a System built elsewhere (the demo passes its compressed-time patterns)."""
    global _system
    with _lock:
        _system = prepared


def reset() -> None:
    """Forget the System: a forked child must not share its parent's database connections."""
    global _system
    with _lock:
        if _system is not None:
            _system.store.engine.dispose(close=False)
        _system = None
