"""Ports of the core implemented on the Celery app: worker pools, the queue probe and the task
registry."""

from __future__ import annotations

from celery import Celery

REPLY_TIMEOUT = 1.0


class CeleryWorkerPools:
    """``WorkerPools`` over Celery's remote control (``inspect stats``, ``pool_grow/shrink``)."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def sizes(self, destination: list[str] | None = None) -> dict[str, int]:
        stats = self.app.control.inspect(destination=destination, timeout=REPLY_TIMEOUT).stats()
        sizes = {}
        for node, reply in (stats or {}).items():
            pool = reply.get("pool", {})
            processes = pool.get("processes")
            sizes[node] = (
                len(processes) if isinstance(processes, list) else pool.get("max-concurrency", 0)
            )
        return sizes

    def resize(self, delta: int, destination: list[str] | None = None) -> dict[str, str]:
        command = self.app.control.pool_grow if delta > 0 else self.app.control.pool_shrink
        replies = (
            command(abs(delta), destination=destination, reply=True, timeout=REPLY_TIMEOUT) or []
        )
        answered = {node: answer for reply in replies for node, answer in reply.items()}
        errors = {
            node: str(answer.get("error")) for node, answer in answered.items() if "error" in answer
        }
        for node in destination or []:
            if node not in answered:
                errors[node] = "no reply"
        return errors


class CeleryTaskRegistry:
    """``TaskRegistry`` over ``inspect registered``: each node's task names, Celery's left out."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def registered(self) -> dict[str, set[str]]:
        replies = self.app.control.inspect(timeout=REPLY_TIMEOUT).registered() or {}
        # An entry reads "name [rate_limit=10/m]" when the task sets routing or rate options.
        return {
            node: {entry.split(" [", 1)[0] for entry in entries}
            for node, entries in replies.items()
        }


class CeleryQueueProbe:
    """``CeleryProbe``: messages waiting per queue, and tasks running on all workers.

    The queues are the app's own (the stage queues) unless others are named.
    """

    def __init__(self, app: Celery, queues: list[str] | None = None) -> None:
        self.app = app
        self.queues = queues or [queue.name for queue in app.conf.task_queues]

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

    def active_tasks(self) -> int | None:
        active = self.app.control.inspect(timeout=REPLY_TIMEOUT).active()
        if active is None:
            return None
        return sum(len(tasks) for tasks in active.values())
