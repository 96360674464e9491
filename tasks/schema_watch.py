"""selfmend.schema.watch: version each watched database's schema; starts remediate | verify per
critical change's incident (there is no automatic fix: remediate escalates it to a person)."""

from tasks.remediate import start_remediations
from workers import app
from workers.runtime import system


@app.task(name="selfmend.schema.watch")
def schema_watch() -> dict:
    report = system().watch_schemas()
    return {**report, "chains": start_remediations(report["new_incidents"])}
