import pytest

from selfmend.models import Risk
from selfmend.remedy.policy import GateFacts, Verdict, decide


def facts(**overrides) -> GateFacts:
    base = dict(
        mode="auto",
        action="set_control",
        target="cache.warm",
        risk=Risk.LOW,
        kill_switch_on=False,
        approved=False,
        last_applied_at=None,
        cooldown_seconds=600,
        now=10_000.0,
    )
    return GateFacts(**{**base, **overrides})


@pytest.mark.parametrize(
    ("overrides", "verdict", "reason"),
    [
        ({}, Verdict.APPLY, "mode auto"),
        ({"kill_switch_on": True, "approved": True}, Verdict.SKIP, "kill switch"),
        ({"mode": "observe"}, Verdict.SKIP, "observe"),
        ({"last_applied_at": 9_900.0}, Verdict.SKIP, "cooldown"),
        ({"last_applied_at": 9_000.0}, Verdict.APPLY, "mode auto"),
        ({"mode": "dry_run", "risk": Risk.HIGH}, Verdict.DRY_RUN, "dry_run"),
        ({"risk": Risk.HIGH}, Verdict.AWAIT_APPROVAL, "approval"),
        ({"risk": Risk.CRITICAL, "approved": True}, Verdict.APPLY, "approved"),
    ],
)
def test_gate_rules_in_order(overrides, verdict, reason):
    decision = decide(facts(**overrides))
    assert decision.verdict is verdict
    assert reason in decision.reason
