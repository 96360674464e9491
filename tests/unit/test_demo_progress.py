"""The demo says what it waits for through its quiet stretches, a line every few seconds."""

from selfmend.demo.progress import Heartbeat, waiting_for
from selfmend.demo.timeline import FaultRow

SCHEDULE = [("cache_flush", 20.0), ("connection_spike", 40.0)]


def row(detected=None, fixed=None, closed=None) -> FaultRow:
    return FaultRow("cache_flush", 20.0, detected, fixed, closed, "open", "-")


def test_each_quiet_stretch_names_what_it_waits_for():
    assert waiting_for(5.0, SCHEDULE, []) == (
        "fault-free stretch: watching for false alarms; next fault, cache_flush, at t=20s (in 15s)"
    )
    assert "to detect cache_flush" in waiting_for(25.0, SCHEDULE[1:], [row()])
    assert "waiting for its fix to be applied" in waiting_for(30.0, SCHEDULE[1:], [row(31.0)])
    assert "verifying it" in waiting_for(33.0, SCHEDULE[1:], [row(31.0, 32.0)])
    done = row(31.0, 32.0, 40.0)
    assert waiting_for(35.0, SCHEDULE[1:], [done]).startswith("next fault, connection_spike")
    assert waiting_for(60.0, [], [done]) == "every fault healed"


def test_the_heartbeat_speaks_only_after_a_quiet_stretch():
    beat = Heartbeat(every=5.0, now=0.0)
    assert [beat.due(t) for t in (1.0, 4.9, 5.0, 6.0)] == [False, False, True, False]
    beat.said(8.0)
    assert not beat.due(12.0)
    assert beat.due(13.0)
