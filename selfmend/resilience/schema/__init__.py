"""Schema versioning: fingerprint a database's schema, diff it against the last stored version,
classify each change by severity, store both, and announce each new version (listeners in this
process, the live setting ``schema.version.<database>`` for every other one, and an incident for
a critical change). ``selfmend.schema.watch`` runs it on the beat schedule."""

from selfmend.resilience.schema.diff import ChangeKind, SchemaChange, diff
from selfmend.resilience.schema.events import SchemaEvents, SchemaVersionEvent, schema_events
from selfmend.resilience.schema.fingerprint import Fingerprint, fingerprint
from selfmend.resilience.schema.watch import SchemaWatch, version_control

__all__ = [
    "ChangeKind",
    "Fingerprint",
    "SchemaChange",
    "SchemaEvents",
    "SchemaVersionEvent",
    "SchemaWatch",
    "diff",
    "fingerprint",
    "schema_events",
    "version_control",
]
