"""Remediating several incidents at the same instant, one thread each, as workers would."""

from __future__ import annotations

import threading

from selfmend.system import System


def remediate_at_once(system: System, incident_ids: list[int]) -> dict[int, str]:
    """Each incident's decision, its remediation started by threads released together."""
    start = threading.Barrier(len(incident_ids))
    decisions: dict[int, str] = {}

    def remediate(incident_id: int) -> None:
        start.wait()
        decisions[incident_id] = system.executor.remediate(incident_id).decision

    threads = [threading.Thread(target=remediate, args=(i,)) for i in incident_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return decisions
