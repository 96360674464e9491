"""selfmend.collect: drain pushed samples and run every pull collector."""

from workers import app
from workers.runtime import system


@app.task(name="selfmend.collect")
def collect() -> dict:
    return system().collect()
