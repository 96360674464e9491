"""Task aliases on the application's workers: a message sent under a wrong task name runs the
registered task that an approved ``task_alias`` action named.

    from selfmend_celery import install_task_aliases

    app = Celery("shop")
    install_task_aliases(app)  # where the app is built, before the worker starts

The worker renames such a message as it consumes it, so the alias covers messages already queued
and those of every producer, including producers that do not run selfmend. Aliases are read from
selfmend's store (through ``selfmend.client`` unless a store is given) when the consumer starts,
before its first message, and then every ``refresh_seconds`` on a thread of its own, so a slow
store never stalls the consumer. A name the worker has registered keeps its own task, and an
alias to a task the worker has not registered is refused and logged: an alias never runs code
the worker was not already given. Messages of task protocol 2 (Celery's default) are renamed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from celery import Celery, bootsteps

from selfmend.errors import ConfigurationError
from selfmend.store.task_aliases import TaskAliasStore

REFRESH_SECONDS = 2.0

log = logging.getLogger(__name__)


def install_task_aliases(
    app: Celery, aliases: TaskAliasStore | None = None, *, refresh_seconds: float = REFRESH_SECONDS
) -> None:
    """Route stored aliases on every worker of ``app``; nothing happens in processes that only
    send tasks, and nothing is read from the store until a worker starts."""
    if refresh_seconds <= 0:
        raise ConfigurationError(f"refresh_seconds must be above 0, got {refresh_seconds}")
    app.selfmend_task_aliases = AliasSource(aliases, refresh_seconds)
    app.steps["consumer"].add(TaskAliasStep)


class AliasSource:
    """Where a worker reads its aliases; the default store is opened on the first read."""

    def __init__(self, aliases: TaskAliasStore | None, refresh_seconds: float) -> None:
        self._aliases = aliases
        self.refresh_seconds = refresh_seconds

    def read(self) -> dict[str, Any]:
        if self._aliases is None:
            # Here, not at import: a process that only sends tasks never loads the client.
            from selfmend.client import default_client

            self._aliases = TaskAliasStore(default_client().store.controls)
        return self._aliases.all()


class AliasStrategy:
    """Renames a message to the alias target, then hands it to the target's own strategy.

    Renaming, rather than registering the task under a second name, keeps the request, its
    result and a prefork child's lookup of the task on the registered name.
    """

    def __init__(self, strategies: Mapping[str, Any], target: str) -> None:
        self.strategies = strategies
        self.target = target

    def __call__(self, message: Any, body: Any, ack: Any, reject: Any, callbacks: Any) -> Any:
        message.headers["task"] = self.target
        return self.strategies[self.target](message, body, ack, reject, callbacks)


class AliasRouter:
    """Keeps the consumer's strategies (task name → handler) in step with the stored aliases."""

    def __init__(self, strategies: dict[str, Any], tasks: Mapping[str, Any]) -> None:
        self.strategies = strategies
        self.tasks = tasks
        self._refused: set[tuple[str, str]] = set()

    def update(self, aliases: Mapping[str, Any]) -> None:
        wanted = {name: target for name, target in aliases.items() if self._allowed(name, target)}
        for name, target in wanted.items():
            current = self.strategies.get(name)
            if not (isinstance(current, AliasStrategy) and current.target == target):
                self.strategies[name] = AliasStrategy(self.strategies, target)
                log.info("task alias on: %s -> %s", name, target)
        for name, strategy in list(self.strategies.items()):
            if isinstance(strategy, AliasStrategy) and name not in wanted:
                del self.strategies[name]
                log.info("task alias off: %s", name)

    def _allowed(self, name: str, target: Any) -> bool:
        if name in self.tasks:
            reason = "the name is a task registered here, which keeps running its own code"
        elif not isinstance(target, str) or target not in self.tasks:
            reason = "the target is not a task registered on this worker"
        else:
            return True
        if (name, repr(target)) not in self._refused:  # once, not on every refresh
            self._refused.add((name, repr(target)))
            log.warning("task alias %s -> %r refused: %s", name, target, reason)
        return False


class TaskAliasStep(bootsteps.StartStopStep):
    """Consumer bootstep: routes the aliases once the task strategies exist, then refreshes."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self.source: AliasSource = c.app.selfmend_task_aliases
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        router = AliasRouter(c.strategies, c.app.tasks)
        self._refresh(router)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._poll, args=(router, self._stop), daemon=True, name="selfmend-task-aliases"
        )
        self._thread.start()

    def stop(self, c: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    shutdown = stop

    def _poll(self, router: AliasRouter, stop: threading.Event) -> None:
        while not stop.wait(self.source.refresh_seconds):
            self._refresh(router)

    def _refresh(self, router: AliasRouter) -> None:
        try:
            aliases = self.source.read()
        except Exception:  # the store is down: keep routing what was read last
            log.exception("task aliases: cannot read selfmend's store; keeping those in place")
            return
        router.update(aliases)
