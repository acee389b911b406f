"""The one Event type for everything that happens in the compound, plus the kind registry."""
from .event import SCHEMA_VERSION, Event, MediaRef, Severity, EventError, format_ts, parse_ts
from .ids import uuid7, uuid7_time_ms
from .kinds import KINDS, KindSpec, Priority, kind_spec, register_kind

__all__ = [
    "SCHEMA_VERSION", "Event", "MediaRef", "Severity", "EventError", "format_ts", "parse_ts",
    "uuid7", "uuid7_time_ms", "KINDS", "KindSpec", "Priority", "kind_spec", "register_kind",
]
