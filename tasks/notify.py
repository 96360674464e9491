"""selfmend.notify: deliver the outbox's escalations and approval requests to the webhook."""

from workers import app
from workers.runtime import system


@app.task(name="selfmend.notify")
def notify() -> dict:
    return system().notify()
