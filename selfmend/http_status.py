"""HTTP statuses as exporters and applications write them: ``503``, ``"503"`` or ``"5xx"``.

One reading for both places that classify requests, the client's ``outcome`` and the exporter
mapping's counters, so a status counts as the same class whichever way it came in.
"""

from __future__ import annotations


def status_class(status: int | str) -> int | None:
    """The hundreds of an HTTP status (5 for ``503`` or ``"5xx"``), or None when it is none."""
    text = str(status).strip().lower()
    if len(text) == 3 and text[0] in "12345" and (text[1:].isdigit() or text[1:] == "xx"):
        return int(text[0])
    return None
