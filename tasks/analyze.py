"""selfmend.analyze: detectors and patterns; starts remediate | verify per new incident, and
sends again what the backlog finds due.

With ``series_shards`` above one, the scheduled call fans out as a group, one task per shard.
"""

from celery import group

from tasks.arguments import ShardArgs, parse
from tasks.remediate import start_remediations
from tasks.verify import resume_verifications
from workers import app
from workers.runtime import system


@app.task(name="selfmend.analyze")
def analyze(shard: int | None = None) -> dict:
    args = parse(ShardArgs, "selfmend.analyze", shard=shard)
    shards = system().settings.series_shards
    if args.shard is None and shards > 1:
        group(analyze.s(index) for index in range(shards)).apply_async()
        return {"fanned_out": shards}
    report = system().analyze(shard=args.shard or 0, shards=shards)
    return {
        **report,
        "chains": start_remediations(report["new_incidents"] + report["due"]),
        "verifications": resume_verifications(report["unverified"]),
    }
