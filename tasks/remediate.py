"""selfmend.remediate: plan, gate and apply one incident's fix; the chain that verifies it."""

from celery import chain

from tasks.arguments import IncidentArgs, parse
from tasks.verify import verify
from workers import app
from workers.runtime import system


@app.task(name="selfmend.remediate", acks_late=True, reject_on_worker_lost=True)
def remediate(incident_id: int) -> dict:
    args = parse(IncidentArgs, "selfmend.remediate", incident_id=incident_id)
    return system().executor.remediate(args.incident_id).as_dict()


def remediation_chain(incident_id: int) -> chain:
    """remediate | verify, verify first looking once the settle delay and hold window passed."""
    first_look = system().verifier.first_check_after
    return chain(remediate.s(incident_id), verify.s().set(countdown=first_look))


def start_remediations(incident_ids: list[int]) -> dict[int, dict[str, str]]:
    """A remediate | verify chain per incident; the task ids of each, for the caller's result."""
    chains = {}
    for incident_id in incident_ids:
        started = remediation_chain(incident_id).apply_async()
        chains[incident_id] = {"remediate": started.parent.id, "verify": started.id}
    return chains
