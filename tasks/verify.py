"""selfmend.verify: judge an applied fix; reschedules itself (countdown) until it can."""

from selfmend.remedy.executor import Remediation
from selfmend.verify import NotYet
from tasks.arguments import RemediationArgs, parse
from workers import app
from workers.runtime import system


@app.task(
    bind=True, name="selfmend.verify", max_retries=40, acks_late=True, reject_on_worker_lost=True
)
def verify(self, remediation: dict) -> dict:
    args = parse(RemediationArgs, "selfmend.verify", **(remediation or {}))
    outcome = system().verifier.verify(Remediation(**args.model_dump()))
    if isinstance(outcome, NotYet):
        raise self.retry(countdown=outcome.retry_in)
    return outcome.as_dict()


def resume_verifications(remediations: list[dict]) -> dict[int, str]:
    """A verify per applied fix whose verification is overdue; its task id, by incident."""
    return {fix["incident_id"]: verify.apply_async((fix,)).id for fix in remediations}
