"""selfmend.retention: roll raw samples up to minute and hour aggregates, archive the audit log of
incidents closed long ago, and prune what is past its age, in bounded batches."""

from workers import app
from workers.runtime import system


@app.task(name="selfmend.retention")
def retention() -> dict:
    return system().retain()
