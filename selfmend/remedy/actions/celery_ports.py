"""The ports through which the Celery actions reach the workers. ``workers.control`` implements
them on the Celery app (remote control and inspect), so the core stays free of Celery."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from selfmend.errors import ActionError

Errors = dict[str, str]
"""Worker node → why it did not do what was asked; empty when every node did."""


class WorkerPools(Protocol):
    def sizes(self, destination: list[str] | None = None) -> dict[str, int]:
        """Pool processes per worker node that answered."""

    def resize(self, delta: int, destination: list[str] | None = None) -> Errors:
        """Grow (delta > 0) or shrink each node's pool."""

    def autoscale_limits(self, destination: list[str] | None = None) -> dict[str, tuple[int, int]]:
        """(max, min) processes of each node that autoscales."""

    def autoscale(self, maximum: int, minimum: int, destination: list[str]) -> Errors:
        """Set each node's autoscaler limits."""

    def pool_processes(self, destination: list[str] | None = None) -> dict[str, list[int]]:
        """The pids of each node's pool processes."""

    def restart_pools(self, destination: list[str]) -> Errors:
        """Replace each node's pool processes (they finish their current task first)."""


class TaskControl(Protocol):
    def rate_limits(self, task: str, destination: list[str] | None = None) -> dict[str, str]:
        """The task's rate limit on each node that registered it ('' for none)."""

    def set_rate_limit(self, task: str, rate: str, destination: list[str]) -> Errors:
        """Set the task's rate limit on each node ('' lifts it)."""

    def active(self, destination: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each node's running tasks: ``id``, ``name`` and ``time_start`` (epoch seconds)."""

    def revoke(self, task_ids: list[str], terminate: bool) -> None:
        """Revoke the tasks everywhere; with ``terminate``, stop the ones already running."""


Port = TypeVar("Port")


def reached(port: Port | None, action: str) -> Port:
    """The port, or a clear error for an action run where no Celery app was wired in."""
    if port is None:
        raise ActionError(f"{action}: no Celery app is wired in to reach the workers")
    return port


def refused(action: str, errors: Errors, doing: str) -> None:
    if errors:
        raise ActionError(f"{action}: workers refused to {doing}: {errors}")
