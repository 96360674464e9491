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
