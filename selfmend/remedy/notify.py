"""Messages to a person and their delivery: Slack-compatible JSON to a webhook.

A message says what happened to the incident, what was tried and with what outcome, and the
evidence; an approval request says what would be done and how to approve it. The payload is
what Slack's incoming webhooks take (``text``, with ``blocks`` for the layout), and carries the
same facts as data under ``selfmend`` for any other receiver. The notify stage delivers the
outbox (``selfmend/store/notifications.py``); a receiver that fails is tried again after a
doubling delay, up to an hour, until it takes the message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from selfmend.errors import SelfmendError
from selfmend.models import ExecutionState
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

ESCALATED = "escalated"
APPROVAL_REQUESTED = "approval_requested"
ROLLED_BACK = "rolled_back"
_TITLES = {
    ESCALATED: "needs a person",
    APPROVAL_REQUESTED: "waits for approval",
    ROLLED_BACK: "was not fixed; every candidate fix was rolled back",
}
_OUTCOMES = (
    ExecutionState.VERIFIED,
    ExecutionState.UNCREDITED,
    ExecutionState.ROLLED_BACK,
    ExecutionState.FAILED,
    ExecutionState.APPLIED,
    ExecutionState.AWAITING_APPROVAL,
    ExecutionState.DRY_RUN,
    ExecutionState.SKIPPED,
)
FIRST_RETRY_SECONDS = 10.0
LONGEST_RETRY_SECONDS = 3600.0


class NotifyError(SelfmendError):
    code = "notify_failed"


class Sender(Protocol):
    def send(self, payload: dict[str, Any]) -> None:
        """Deliver one message; raise when the receiver did not take it."""


def tried(history: Iterable[Execution]) -> list[dict[str, str]]:
    """Each action the incident tried, with how far it got (its latest outcome) and why."""
    latest: dict[str, Execution] = {}
    for execution in history:
        if execution.state in _OUTCOMES and execution.action != "escalate":
            latest[execution.action] = execution
    return [
        {"action": e.action, "target": e.target, "outcome": str(e.state), "reason": e.reason}
        for e in latest.values()
    ]


def message(kind: str, incident: Incident, history: list[Execution], reason: str) -> dict[str, Any]:
    attempts = tried(history)
    headline = (
        f"selfmend: incident {incident.id} ({incident.severity}) {_TITLES[kind]}: "
        f"{incident.pattern} on {incident.target}"
    )
    lines = [f"*{headline}*", f"Why: {reason}"]
    if incident.root_cause:
        lines.append(f"Root cause: {incident.root_cause}")
    lines += [
        f"Tried {a['action']} on {a['target']}: {a['outcome']} ({a['reason']})" for a in attempts
    ]
    if kind == APPROVAL_REQUESTED:
        lines.append(f"Approve with: `selfmend approve {incident.id}`")
    return {
        "text": headline,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
        "selfmend": {
            "kind": kind,
            "incident": incident.as_dict(),
            "reason": reason,
            "tried": attempts,
        },
    }


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout: float = 5.0

    def send(self, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload, default=str).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise NotifyError(f"webhook answered {error.code} {error.reason}") from error
        except (urllib.error.URLError, OSError) as error:
            raise NotifyError(f"webhook unreachable: {error}") from error


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped."""
    return min(FIRST_RETRY_SECONDS * 2**attempts, LONGEST_RETRY_SECONDS)


def deliver(store: Store, sender: Sender | None, now: float) -> dict[str, int]:
    """Send every message that is due; without a sender, they wait in the outbox."""
    due = store.notifications.due(now)
    if sender is None:
        return {"sent": 0, "failed": 0, "waiting": len(due)}
    sent = failed = 0
    for notification in due:
        try:
            sender.send(notification.payload)
        except NotifyError as error:
            failed += 1
            retry_at = now + retry_delay(notification.attempts)
            store.notifications.failed(notification, str(error), retry_at)
            log.warning(
                "notify.failed",
                notification_id=notification.id,
                incident_id=notification.incident_id,
                error=str(error),
            )
            continue
        store.notifications.sent(notification.id)
        sent += 1
    return {"sent": sent, "failed": failed, "waiting": 0}
