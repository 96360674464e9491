"""The resilient writer: inserts and updates that heal column names, coerce types, keep the good
rows of a batch and log every healed row so it can be rolled back."""

from selfmend.resilience.writer.model import ModelNamer, namer_from_settings
from selfmend.resilience.writer.results import BatchResult, Heal, RowError, RowWritten
from selfmend.resilience.writer.writer import ResilientWriter

__all__ = [
    "BatchResult",
    "Heal",
    "ModelNamer",
    "ResilientWriter",
    "RowError",
    "RowWritten",
    "namer_from_settings",
]
