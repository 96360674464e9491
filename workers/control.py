"""Ports of the core implemented on the Celery app: worker pools, task control, the queue probe
and the task registry."""

from __future__ import annotations

from typing import Any

from celery import Celery

from selfmend.remedy.actions.celery_ports import Errors

REPLY_TIMEOUT = 1.0


def errors_of(replies: list[dict[str, Any]] | None, destination: list[str] | None) -> Errors:
    """Node → error from a broadcast's replies; a node asked that did not answer is one too."""
    answered = {node: answer for reply in replies or [] for node, answer in reply.items()}
    errors = {node: str(answer["error"]) for node, answer in answered.items() if "error" in answer}
    for node in destination or []:
        if node not in answered:
            errors[node] = "no reply"
    return errors


class CeleryWorkerPools:
    """``WorkerPools`` over Celery's remote control: ``inspect stats``, ``pool_grow`` and
    ``pool_shrink``, ``autoscale``, ``pool_restart``."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def _stats(self, destination: list[str] | None) -> dict[str, Any]:
        inspector = self.app.control.inspect(destination=destination, timeout=REPLY_TIMEOUT)
        return inspector.stats() or {}

    def sizes(self, destination: list[str] | None = None) -> dict[str, int]:
        sizes = {}
        for node, reply in self._stats(destination).items():
            pool = reply.get("pool", {})
            processes = pool.get("processes")
            sizes[node] = (
                len(processes) if isinstance(processes, list) else pool.get("max-concurrency", 0)
            )
        return sizes

    def resize(self, delta: int, destination: list[str] | None = None) -> Errors:
        command = self.app.control.pool_grow if delta > 0 else self.app.control.pool_shrink
        replies = command(abs(delta), destination=destination, reply=True, timeout=REPLY_TIMEOUT)
        return errors_of(replies, destination)

    def autoscale_limits(self, destination: list[str] | None = None) -> dict[str, tuple[int, int]]:
        return {
            node: (reply["autoscaler"]["max"], reply["autoscaler"]["min"])
            for node, reply in self._stats(destination).items()
            if reply.get("autoscaler")
        }

    def autoscale(self, maximum: int, minimum: int, destination: list[str]) -> Errors:
        replies = self.app.control.autoscale(
            maximum, minimum, destination=destination, reply=True, timeout=REPLY_TIMEOUT
        )
        return errors_of(replies, destination)

    def pool_processes(self, destination: list[str] | None = None) -> dict[str, list[int]]:
        return {
            node: list(reply.get("pool", {}).get("processes") or [])
            for node, reply in self._stats(destination).items()
        }

    def restart_pools(self, destination: list[str]) -> Errors:
        replies = self.app.control.pool_restart(
            destination=destination, reply=True, timeout=REPLY_TIMEOUT
        )
        return errors_of(replies, destination)


class CeleryTaskControl:
    """``TaskControl`` over ``inspect registered`` and ``active``, ``rate_limit`` and ``revoke``."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def rate_limits(self, task: str, destination: list[str] | None = None) -> dict[str, str]:
        inspector = self.app.control.inspect(destination=destination, timeout=REPLY_TIMEOUT)
        limits = {}
        for node, entries in (inspector.registered("rate_limit") or {}).items():
            for entry in entries:
                name, _, options = entry.partition(" [")
                if name == task:
                    limits[node] = options.removeprefix("rate_limit=").rstrip("]")
        return limits

    def set_rate_limit(self, task: str, rate: str, destination: list[str]) -> Errors:
        replies = self.app.control.rate_limit(
            task, rate or None, destination=destination, reply=True, timeout=REPLY_TIMEOUT
        )
        return errors_of(replies, destination)

    def active(self, destination: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        inspector = self.app.control.inspect(destination=destination, timeout=REPLY_TIMEOUT)
        return inspector.active() or {}

    def revoke(self, task_ids: list[str], terminate: bool) -> None:
        self.app.control.revoke(task_ids, terminate=terminate)


class CeleryTaskRegistry:
    """``TaskRegistry`` over ``inspect registered`` on each app's workers (selfmend's own and the
    application's): each node's task names, Celery's left out."""

    def __init__(self, *apps: Celery) -> None:
        self.apps = apps

    def registered(self) -> dict[str, set[str]]:
        nodes: dict[str, set[str]] = {}
        for app in self.apps:
            replies = app.control.inspect(timeout=REPLY_TIMEOUT).registered() or {}
            # An entry reads "name [rate_limit=10/m]" when the task sets routing or rate options.
            for node, entries in replies.items():
                nodes.setdefault(node, set()).update(entry.split(" [", 1)[0] for entry in entries)
        return nodes


class CeleryQueueProbe:
    """``CeleryProbe``: messages waiting per queue, and the tasks running on every worker.

    The queues are the app's own (the stage queues) unless others are named; ``task_ages`` is
    set for the application's workers alone (``workers.watched``).
    """

    def __init__(self, app: Celery, queues: list[str] | None = None, task_ages: bool = False):
        self.app = app
        self.queues = queues or [queue.name for queue in app.conf.task_queues]
        self.task_ages = task_ages

    def queue_depths(self) -> dict[str, int]:
        """A queue the broker does not know holds nothing: Redis drops an empty list's key, and
        AMQP closes the channel on a passive declare of a missing queue, so a fresh one is
        opened for the next."""
        depths = {}
        with self.app.connection_for_read() as connection:
            channel = connection.channel()
            for name in self.queues:
                try:
                    depths[name] = channel.queue_declare(name, passive=True).message_count
                except connection.channel_errors:
                    depths[name] = 0
                    channel = connection.channel()
            channel.close()
        return depths

    def running(self) -> dict[str, list[float]] | None:
        active = self.app.control.inspect(timeout=REPLY_TIMEOUT).active()
        if active is None:
            return None
        return {
            node: [task["time_start"] for task in tasks if task.get("time_start")]
            for node, tasks in active.items()
        }
