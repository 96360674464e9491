"""selfmend.check_tasks: the integration check; starts remediate | verify per new incident
(a proposed alias waits there for a person's approval)."""

from tasks.remediate import start_remediations
from workers import app
from workers.runtime import system


@app.task(name="selfmend.check_tasks")
def check_tasks() -> dict:
    report = system().check_task_names()
    return {**report, "chains": start_remediations(report["new_incidents"])}
