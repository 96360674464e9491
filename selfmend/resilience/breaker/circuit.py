"""One named breaker's shared state as this process sees it, and the only way to change it.

The transition table lists every move a breaker may make; anything else is refused. A move is
one compare-and-set in the storage on (state, version): of several processes that see the same
reason to move, exactly one makes the move, and only that one announces it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from selfmend.errors import IllegalTransition, is_interruption
from selfmend.resilience.breaker.events import Announcer, Transition
from selfmend.resilience.breaker.pending import PendingSuccesses
from selfmend.resilience.breaker.storage import BreakerStorage, Snapshot, State

log = structlog.get_logger(__name__)

_FORCED = frozenset({State.FORCED_OPEN, State.FORCED_CLOSED})

TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.CLOSED: frozenset({State.OPEN}) | _FORCED,
    State.OPEN: frozenset({State.HALF_OPEN}) | _FORCED,
    State.HALF_OPEN: frozenset({State.OPEN, State.CLOSED}) | _FORCED,
    State.FORCED_OPEN: frozenset({State.CLOSED, State.FORCED_CLOSED}),  # released, or flipped
    State.FORCED_CLOSED: frozenset({State.CLOSED, State.FORCED_OPEN}),
}


def check_transition(from_state: State, to_state: State) -> None:
    if to_state not in TRANSITIONS[from_state]:
        allowed = ", ".join(sorted(TRANSITIONS[from_state]))
        raise IllegalTransition(
            f"a breaker cannot go from {from_state} to {to_state}; from {from_state} it may go "
            f"to {allowed}"
        )


def _name_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_process = _name_process()


def _renamed_after_fork() -> None:
    global _process
    _process = _name_process()


os.register_at_fork(after_in_child=_renamed_after_fork)


def process_id() -> str:
    """This process, as the window's evidence counts it: host and pid (a forked pool child
    is a process of its own)."""
    return _process


class Circuit:
    """A breaker's shared state, the view this process last had of it, the successes this
    process has not sent yet, and its moves."""

    def __init__(self, name: str, storage: BreakerStorage, announcer: Announcer) -> None:
        self.name = name
        self.storage = storage
        self.announcer = announcer
        self.pending = PendingSuccesses()
        self._view = Snapshot.initial()
        self._seen_at = float("-inf")  # read on first use, not at declaration

    def view(self, max_age: float, renew: Callable[[Snapshot], Snapshot] | None = None) -> Snapshot:
        """The state as last seen, renewed first when that was over ``max_age`` seconds ago:
        by ``renew``, a step given the old view that returns the state (the breaker's sends
        its pending successes on the way), or else by a read. A storage that cannot be reached
        leaves the last view in force until the next try."""
        if time.monotonic() - self._seen_at > max_age:
            try:
                self.see(self.storage.read(self.name) if renew is None else renew(self._view))
            except Exception as error:
                if is_interruption(error):
                    raise
                log.warning("breaker.view_stale", breaker=self.name, exc_info=True)
                self._seen_at = time.monotonic()
        return self._view

    @property
    def last_seen(self) -> Snapshot:
        """The view as it is, never renewed: what this process's latest calls went by."""
        return self._view

    def see(self, snapshot: Snapshot) -> None:
        """Take a snapshot any step returned as the view, unless a newer one is known. The
        shared state replaces a view the process kept on its own while the storage was away,
        whatever their versions; the successes pending under the local versions go with it."""
        if snapshot.version >= self._view.version:
            self._view = snapshot
            self._seen_at = time.monotonic()
        elif self._view.local and not snapshot.local:
            self.pending.restart()
            self._view = snapshot
            self._seen_at = time.monotonic()

    def move(
        self,
        state: State,
        version: int,
        to: State,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> Snapshot:
        """Move from ``state`` at ``version`` to ``to`` if no process moved first; the state
        the breaker is in afterwards, whoever moved it."""
        check_transition(state, to)
        now = time.time()
        moved = self.storage.move(self.name, state, version, to, now)
        self.see(moved.snapshot)
        if moved.won:
            self.announcer.announce(
                Transition(
                    self.name,
                    state,
                    to,
                    moved.snapshot.version,
                    reason,
                    process_id(),
                    now,
                    evidence or {},
                )
            )
        return moved.snapshot
