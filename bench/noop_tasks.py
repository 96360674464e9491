"""The baseline of ``bench.remediation``: two tasks that do nothing, on selfmend's own app, so a
bare chain of them crosses the same broker, backend and worker as remediate | verify."""

from workers import app


@app.task(name="bench.noop")
def noop(previous: object = None) -> object:
    return previous
