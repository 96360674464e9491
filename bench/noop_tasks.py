"""The baselines of ``bench.remediation``, on selfmend's own app, so that they cross the same
broker, backend and worker as remediate | verify:

- ``bench.noop``, twice in a chain: the cost of Celery itself;
- ``bench.shaped_remediate | bench.shaped_verify``: tasks of remediate's and verify's shape
  (late acks, the same argument checks, results of the same size; the chain adds verify's
  countdown) with no store work, which leaves the store's share of the loop's overhead.
"""

import time

from selfmend.remedy.executor import Remediation
from selfmend.verify import Judgement
from tasks.arguments import IncidentArgs, RemediationArgs, parse
from workers import app


@app.task(name="bench.noop")
def noop(previous: object = None) -> object:
    return previous


@app.task(name="bench.shaped_remediate", acks_late=True, reject_on_worker_lost=True)
def shaped_remediate(incident_id: int) -> dict:
    args = parse(IncidentArgs, "bench.shaped_remediate", incident_id=incident_id)
    summary = f"set bench.flag_{incident_id} from unset to True"
    applied = Remediation(incident_id, "applied", summary, "set_control", incident_id, time.time())
    return {**applied.as_dict(), "incident_id": args.incident_id}


@app.task(name="bench.shaped_verify", acks_late=True, reject_on_worker_lost=True)
def shaped_verify(remediation: dict) -> dict:
    args = parse(RemediationArgs, "bench.shaped_verify", **remediation)
    after = {"samples": 10, "values": {"max(bench.errors, 60s) > 1": 0.0}, "still_holding": []}
    judged = Judgement(args.incident_id, "fixed", "resolved", {"root_cause": "bench"}, after)
    return judged.as_dict()
