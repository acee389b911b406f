"""Event: the typed, JSON-round-trippable record of one thing that happened."""
from __future__ import annotations

import dataclasses
import enum
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class EventError(ValueError):
    """An event (or its JSON) is not valid; the message says which field and why."""


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


def format_ts(ts_ms: int) -> str:
    """UTC ISO-8601 with exactly three fractional digits and a Z, e.g. 2026-12-01T07:32:18.123Z."""
    dt = datetime.fromtimestamp(ts_ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ms % 1000:03d}Z"


def parse_ts(text: str) -> int:
    if not isinstance(text, str) or not _TS_RE.match(text):
        raise EventError(f"ts: {text!r} is not a UTC timestamp like 2026-12-01T07:32:18.123Z")
    dt = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000 + int(text[20:23])


@dataclasses.dataclass(frozen=True, slots=True)
class MediaRef:
    """A picture or clip that belongs to an event (stored locally, indexed in the media table)."""

    media_id: str
    content_type: str = "image/jpeg"
    role: str = "snapshot"  # snapshot | evidence | clip
    size: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"media_id": self.media_id, "content_type": self.content_type, "role": self.role}
        if self.size is not None:
            d["size"] = self.size
        if self.sha256 is not None:
            d["sha256"] = self.sha256
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MediaRef":
        if not isinstance(d, dict) or "media_id" not in d:
            raise EventError(f"media: {d!r} is not a media reference (needs media_id)")
        extra = set(d) - {"media_id", "content_type", "role", "size", "sha256"}
        if extra:
            raise EventError(f"media: unknown field(s) {sorted(extra)}")
        return cls(**d)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    id: str  # UUIDv7, the de-duplication key from driver to county
    ts_ms: int  # when it happened, UTC epoch milliseconds
    kind: str  # from edge.events.kinds registry, e.g. "access.granted"
    gateway_id: str
    compound_id: str
    source: str  # device / camera / component id that observed it
    severity: Severity = Severity.INFO
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    media: tuple[MediaRef, ...] = ()
    schema: int = SCHEMA_VERSION

    @property
    def ts(self) -> str:
        return format_ts(self.ts_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts_ms),
            "kind": self.kind,
            "gateway_id": self.gateway_id,
            "compound_id": self.compound_id,
            "source": self.source,
            "severity": self.severity.value,
            "payload": self.payload,
            "media": [m.to_dict() for m in self.media],
            "schema": self.schema,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        if not isinstance(d, dict):
            raise EventError("event: expected a JSON object")
        required = ["id", "ts", "kind", "gateway_id", "compound_id", "source", "severity", "payload"]
        missing = [k for k in required if k not in d]
        if missing:
            raise EventError(f"event: missing field(s) {missing}")
        extra = set(d) - set(required) - {"media", "schema"}
        if extra:
            raise EventError(f"event: unknown field(s) {sorted(extra)}")
        try:
            uuid.UUID(d["id"])
        except (ValueError, TypeError, AttributeError):
            raise EventError(f"id: {d['id']!r} is not a UUID") from None
        try:
            sev = Severity(d["severity"])
        except ValueError:
            raise EventError(f"severity: {d['severity']!r} is not one of info, warning, critical") from None
        if not isinstance(d["payload"], dict):
            raise EventError("payload: expected a JSON object")
        for key in ("kind", "gateway_id", "compound_id", "source"):
            if not isinstance(d[key], str) or not d[key]:
                raise EventError(f"{key}: expected a non-empty string")
        schema = d.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema < 1:
            raise EventError(f"schema: {schema!r} is not a schema version")
        return cls(
            id=d["id"], ts_ms=parse_ts(d["ts"]), kind=d["kind"], gateway_id=d["gateway_id"],
            compound_id=d["compound_id"], source=d["source"], severity=sev, payload=d["payload"],
            media=tuple(MediaRef.from_dict(m) for m in d.get("media", [])), schema=schema,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> "Event":
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EventError(f"event: not valid JSON ({exc})") from None
        return cls.from_dict(d)
