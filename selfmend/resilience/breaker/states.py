"""One class per state, deciding what a call does in it.

``admit`` runs before the protected call: it lets the call through (returning a ``Ticket``) or
raises ``CircuitOpen``. ``settle`` runs after it with whether it failed, records the outcome,
and asks the circuit for the move the outcome calls for. No lock is held between the two.
``renew`` fetches the state for a process whose view of it is older than ``sync_seconds``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker.circuit import process_id
from selfmend.resilience.breaker.storage import Snapshot, State

if TYPE_CHECKING:
    from selfmend.resilience.breaker.breaker import CircuitBreaker


@dataclass(slots=True)  # built on every call: a frozen dataclass builds slower
class Ticket:
    """A call let through: in which state, and at which version of the breaker."""

    state: type[StateBehaviour]
    version: int


class StateBehaviour:
    state: ClassVar[State]

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        raise NotImplementedError

    @classmethod
    def settle(cls, breaker: CircuitBreaker, ticket: Ticket, failed: bool) -> None:
        """A call admitted in this state ended; nothing to do unless the state says so."""

    @classmethod
    def renew(cls, breaker: CircuitBreaker, view: Snapshot) -> Snapshot:
        """The state now, for a process whose ``view`` (in this state) is too old: read."""
        return breaker.circuit.storage.read(breaker.name)


class Closed(StateBehaviour):
    """Calls pass, and every outcome joins the window; a window past the threshold opens.

    A success is counted in the process (``PendingSuccesses``), not sent on its own: it goes
    with the next trip this process makes, which is a failure's, the renewal of a view older
    than ``sync_seconds``, or one made when a window's worth are pending. Each of those trips
    first adds the pending successes to the window, then the failure if there is one, and the
    window it returns is judged: in rate mode successes can bring it to ``minimum_calls``.
    """

    state = State.CLOSED

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        return Ticket(cls, view.version)

    @classmethod
    def settle(cls, breaker: CircuitBreaker, ticket: Ticket, failed: bool) -> None:
        pending = breaker.circuit.pending
        if failed:
            cls._record(breaker, ticket.version, pending.take(ticket.version), failed=True)
        elif pending.add(ticket.version) >= breaker.settings.window_size:
            cls._record(breaker, ticket.version, pending.take(ticket.version), failed=False)

    @classmethod
    def renew(cls, breaker: CircuitBreaker, view: Snapshot) -> Snapshot:
        successes = breaker.circuit.pending.take(view.version)
        if not successes:
            return super().renew(breaker, view)
        return cls._record(breaker, view.version, successes, failed=False)

    @classmethod
    def _record(
        cls, breaker: CircuitBreaker, version: int, successes: int, *, failed: bool
    ) -> Snapshot:
        """Send ``successes`` and then a failure if ``failed``, in one trip; open the breaker
        if the window is past the threshold. The state afterwards."""
        settings = breaker.settings
        recorded = breaker.circuit.storage.record(
            breaker.name,
            version,
            process_id(),
            settings.window_size,
            successes=successes,
            failed=failed,
        )
        breaker.circuit.see(recorded.snapshot)
        window = recorded.window
        if window is None or not window.failures:
            return recorded.snapshot
        # A window kept in this process (the shared storage away) holds its calls alone.
        local = recorded.snapshot.local
        reason = settings.breach(window, 1 if local else breaker.processes_needed)
        if reason is None:
            return recorded.snapshot
        if local:
            reason += " (counted in this process: the shared storage is unreachable)"
        evidence = {
            "calls": window.calls,
            "failures": window.failures,
            "failing_processes": window.failing_processes,
            "settings": settings.model_dump(),
        }
        return breaker.circuit.move(cls.state, version, State.OPEN, reason, evidence)


class Open(StateBehaviour):
    """Calls are refused until ``reset_timeout`` has passed; then the breaker goes half-open."""

    state = State.OPEN

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        wait = view.since + breaker.settings.reset_timeout - time.time()
        if wait > 0:
            raise CircuitOpen(breaker.name, str(cls.state), wait)
        now = breaker.circuit.move(cls.state, view.version, State.HALF_OPEN, "reset timeout passed")
        return BEHAVIOUR[now.state].admit(breaker, now)


class HalfOpen(StateBehaviour):
    """A bounded number of probes pass; one failure reopens, all of them succeeding closes."""

    state = State.HALF_OPEN

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        settings = breaker.settings
        claim = breaker.circuit.storage.claim_probe(
            breaker.name, view.version, settings.half_open_probes
        )
        breaker.circuit.see(claim.snapshot)
        if claim.granted:
            return Ticket(cls, view.version)
        now = claim.snapshot
        if now.state is not cls.state:
            return BEHAVIOUR[now.state].admit(breaker, now)
        waited = time.time() - now.since
        if waited >= settings.reset_timeout:  # the probes' processes died before reporting
            breaker.circuit.move(
                cls.state,
                now.version,
                State.OPEN,
                f"half-open probes did not report within {settings.reset_timeout:g} s",
            )
        raise CircuitOpen(breaker.name, str(cls.state), max(settings.reset_timeout - waited, 0.0))

    @classmethod
    def settle(cls, breaker: CircuitBreaker, ticket: Ticket, failed: bool) -> None:
        if failed:
            breaker.circuit.move(cls.state, ticket.version, State.OPEN, "a half-open probe failed")
            return
        recorded = breaker.circuit.storage.record(
            breaker.name, ticket.version, process_id(), breaker.settings.window_size, successes=1
        )
        breaker.circuit.see(recorded.snapshot)
        probes = breaker.settings.half_open_probes
        if recorded.probe_successes is not None and recorded.probe_successes >= probes:
            breaker.circuit.move(
                cls.state, ticket.version, State.CLOSED, f"{probes} half-open probes succeeded"
            )


class ForcedOpen(StateBehaviour):
    """An operator holds the breaker open: every call is refused until released."""

    state = State.FORCED_OPEN

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        raise CircuitOpen(breaker.name, str(cls.state), None)


class ForcedClosed(StateBehaviour):
    """An operator holds the breaker closed: every call passes and nothing is counted."""

    state = State.FORCED_CLOSED

    @classmethod
    def admit(cls, breaker: CircuitBreaker, view: Snapshot) -> Ticket:
        return Ticket(cls, view.version)


class StorageDown(StateBehaviour):
    """Not a state: how a call is admitted when the storage could not be reached. The call
    passes and nothing is recorded, so an outage of Redis or the store never becomes an outage
    of the service behind the breaker."""


BEHAVIOUR: dict[State, type[StateBehaviour]] = {
    behaviour.state: behaviour for behaviour in (Closed, Open, HalfOpen, ForcedOpen, ForcedClosed)
}
