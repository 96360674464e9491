"""Messages to a person: escalations, approval requests and exhausted candidates reach a real
HTTP receiver on loopback as Slack-compatible JSON, from the outbox, retried until taken."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.models import Sample, Severity
from selfmend.remedy.notify import retry_delay
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change


class Receiver:
    """A webhook endpoint: answers each POST with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.bodies.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def pattern(name: str, actions: tuple[ActionSpec, ...] = ()) -> Pattern:
    return Pattern(
        name=name,
        condition=MetricCondition(
            series="app.errors", aggregate="max", window=10.0, op=">", threshold=1.0
        ),
        severity=Severity.HIGH,
        actions=actions,
        why="test",
    )


def build(tmp_path, url: str | None, *patterns: Pattern) -> System:
    settings = Settings(
        home=tmp_path,
        mode="auto",
        webhook_url=url,
        cooldown_seconds=0,
        settle_seconds=1,
        verify_window_seconds=5,
    )
    system = System.from_settings(settings, patterns=patterns)
    app_reads_what_its_fixes_change(system, default=False)
    return system


def incident_of(system: System, name: str) -> int:
    incident, _ = system.store.incidents.open(
        pattern=name,
        target="app.errors",
        severity=Severity.HIGH,
        series_key="app.errors",
        root_cause="max(app.errors, 10s) > 1: 7 on app.errors",
        evidence={},
    )
    return incident.id


def test_an_escalation_reaches_the_webhook_with_the_incident_and_why(tmp_path, receiver):
    system = build(tmp_path, receiver.url, pattern("unknown_errors"))
    incident_id = incident_of(system, "unknown_errors")

    system.executor.remediate(incident_id)
    assert system.notify() == {"sent": 1, "failed": 0, "waiting": 0}
    assert system.notify()["sent"] == 0  # sent once

    (body,) = receiver.bodies
    assert body["text"] == (
        f"selfmend: incident {incident_id} (high) needs a person: unknown_errors on app.errors"
    )
    shown = body["blocks"][0]["text"]["text"]
    assert "Why: pattern 'unknown_errors' has no automatic fix" in shown
    assert "Root cause: max(app.errors, 10s) > 1: 7 on app.errors" in shown
    assert body["selfmend"]["kind"] == "escalated"
    assert body["selfmend"]["incident"]["status"] == "escalated"


def test_an_approval_request_says_what_would_be_done_and_how_to_approve(tmp_path, receiver):
    risky = ActionSpec(
        name="set_control", params={"key": "app.safe_mode", "value": True}, risk="high"
    )
    system = build(tmp_path, receiver.url, pattern("errors_high", (risky,)))
    incident_id = incident_of(system, "errors_high")

    system.executor.remediate(incident_id)
    system.notify()

    (body,) = receiver.bodies
    assert body["selfmend"]["kind"] == "approval_requested"
    shown = body["blocks"][0]["text"]["text"]
    assert "Why: set app.safe_mode from False to True (high risk)" in shown
    assert f"`selfmend approve {incident_id}`" in shown


def test_when_every_candidate_failed_the_person_is_told_what_was_tried(tmp_path, receiver):
    fix = ActionSpec(name="set_control", params={"key": "app.safe_mode", "value": True})
    system = build(tmp_path, receiver.url, pattern("errors_high", (fix,)))
    incident_id = incident_of(system, "errors_high")
    remediation = system.executor.remediate(incident_id)
    system.store.samples.insert(
        [
            Sample(series="app.errors", ts=remediation.applied_at + 1 + i, value=9.0)
            for i in range(5)
        ]
    )

    system.verifier.verify(remediation, now=remediation.applied_at + 10)
    system.notify()

    (body,) = receiver.bodies
    assert body["selfmend"]["kind"] == "rolled_back"
    assert body["selfmend"]["tried"] == [
        {
            "action": "set_control",
            "target": "app.safe_mode",
            "outcome": "rolled_back",  # told once the rollback is done
            "reason": "verification failed: rolled back",
        }
    ]
    assert (
        "set_control did not fix it and is rolled back; no other candidate fix is left"
        in (body["blocks"][0]["text"]["text"])
    )


def test_a_failing_receiver_is_tried_again_later_and_nothing_is_lost(tmp_path):
    receiver = Receiver(statuses=[500, 503])
    try:
        system = build(tmp_path, receiver.url, pattern("unknown_errors"))
        incident_id = incident_of(system, "unknown_errors")
        system.executor.remediate(incident_id)
        now = time.time()

        assert system.notify(now) == {"sent": 0, "failed": 1, "waiting": 0}
        assert system.notify(now + 1)["failed"] == 0  # not due again yet
        assert system.notify(now + retry_delay(0))["failed"] == 1
        assert system.notify(now + retry_delay(0) + retry_delay(1))["sent"] == 1

        (stored,) = system.store.notifications.for_incident(incident_id)
        assert (stored.attempts, stored.sent_at is not None) == (2, True)
        assert stored.last_error is None
        assert len(receiver.bodies) == 1
    finally:
        receiver.close()


def test_without_a_webhook_messages_wait_in_the_outbox(tmp_path):
    system = build(tmp_path, None, pattern("unknown_errors"))
    system.executor.remediate(incident_of(system, "unknown_errors"))

    assert system.notify() == {"sent": 0, "failed": 0, "waiting": 1}
