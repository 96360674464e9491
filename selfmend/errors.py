"""One error hierarchy: every error selfmend raises on purpose is a ``SelfmendError``.

Each carries a stable ``code`` so the audit log, the API and tests can tell errors apart without
matching message text.
"""

from __future__ import annotations


class SelfmendError(Exception):
    """Base of every deliberate selfmend error."""

    code = "selfmend_error"


class ConfigurationError(SelfmendError):
    """A setting, pattern or action definition is wrong; the message names the field."""

    code = "configuration"


class InvalidInput(SelfmendError):
    """Input from a task argument, a pushed sample or an HTTP body failed validation."""

    code = "invalid_input"


class NotFound(SelfmendError):
    """A referenced row (incident, execution) does not exist."""

    code = "not_found"


class ActionError(SelfmendError):
    """An action could not plan, apply or roll back."""

    code = "action_failed"


class StepTooLarge(ActionError):
    """A planned change exceeds the action's bound on step size."""

    code = "step_too_large"


class CircuitOpen(SelfmendError):
    """A circuit breaker refused a call: the service behind it is failing (or an operator forced
    the breaker open). ``retry_after`` is the seconds until the breaker next lets a probe
    through, or None while it is forced open."""

    code = "circuit_open"

    def __init__(self, breaker: str, state: str, retry_after: float | None) -> None:
        wait = "until released" if retry_after is None else f"for {retry_after:.1f} s"
        super().__init__(f"circuit breaker {breaker!r} is {state}: calls are refused {wait}")
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after


class IllegalTransition(SelfmendError):
    """A circuit breaker was asked to move between two states its transition table does not
    connect."""

    code = "illegal_transition"


class WriteRejected(InvalidInput):
    """The resilient writer refused a row; ``field`` names the input key or column at fault and
    ``kind`` says why (``coercion``, ``unknown_column``, ``ambiguous_heal``, ``missing_column``,
    ``database``, ``connection_lost``, ``outcome_unknown``, ``not_found``)."""

    code = "write_rejected"

    def __init__(self, message: str, *, field: str | None, kind: str) -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


class DatabaseUnreachable(SelfmendError):
    """A database selfmend watches could not be reached or read; the message names it."""

    code = "database_unreachable"


# Exceptions that interrupt the whole stage they are raised in, such as the worker's soft time
# limit (Celery's SoftTimeLimitExceeded, an Exception): a loop that isolates its targets from
# one another lets these through rather than logging them as one target failing, or the stage
# would go on to the next target until the hard limit kills its process. The core imports no
# Celery: the worker registers its own here (workers/limits.py, which creating the app imports).
interruptions: set[type[BaseException]] = set()


def is_interruption(error: BaseException) -> bool:
    """Whether ``error`` interrupts the stage: an ``except Exception`` that isolates one target,
    call or listener re-raises it. So does an error raised while an interruption was passing
    (its ``__context__``): psycopg, interrupted in a statement, leaves the connection busy, and
    the rollback on the way out fails in its place."""
    kinds = tuple(interruptions)
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__context__
    return False
