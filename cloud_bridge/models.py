"""Payload models of the uplink contract (everything except event payloads, which live in edge/events/kinds.py).

These pydantic models are the source of the JSON Schemas in cloud_bridge/schemas/ (see schemagen.py) and of
docs/asyncapi.yaml; the gateway validates incoming commands with them. Add fields, never rename.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ENVELOPE_SCHEMA = 1
TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- events (.../event/{kind}, .../alert) -----------------------------------------------------------------
class MediaRefModel(Model):
    media_id: str
    content_type: str = "image/jpeg"
    role: str = "snapshot"
    size: int | None = None
    sha256: str | None = None


class EventModel(Model):
    id: str = Field(pattern=UUID_PATTERN, description="UUIDv7 event id (also a user property)")
    ts: str = Field(pattern=TS_PATTERN, description="when it happened, UTC")
    kind: str
    gateway_id: str
    compound_id: str
    source: str = Field(description="device / camera / component that observed it")
    severity: Literal["info", "warning", "critical"]
    payload: dict[str, Any] = Field(description="validated against the kind's payload schema")
    media: list[MediaRefModel] = Field(default_factory=list)
    schema_: int = Field(alias="schema", ge=1, description="event schema version")


class Envelope(Model):
    """Every event message. `(gateway_id, seq)` is the de-duplication and ordering key."""

    gateway_id: str
    seq: int = Field(ge=1, description="per-gateway sequence: strictly increasing, persisted, never reused")
    event_id: str = Field(pattern=UUID_PATTERN)
    schema_: Literal[1] = Field(alias="schema", description="envelope schema version")
    event: EventModel


# ---- status (retained) ----------------------------------------------------------------------------------
class Status(Model):
    state: Literal["online", "offline", "stopped"] = Field(
        description="online: birth on each connect; offline: broker will (link lost); stopped: clean shutdown")
    gateway_id: str
    compound_id: str
    county_code: str
    ts: str = Field(pattern=TS_PATTERN)
    version: str
    config_hash: str
    started_at: str = Field(pattern=TS_PATTERN)
    last_seq: int = Field(ge=0, description="highest seq assigned so far")
    pending_from_seq: int = Field(ge=1, description="every seq below this was accepted by the broker or evicted")
    protocol: Literal["cgw/v1"] = "cgw/v1"


# ---- telemetry ----------------------------------------------------------------------------------------------
class OutboxTelemetry(Model):
    depth: int = Field(ge=0, description="unsent events")
    bytes: int = Field(ge=0, description="bytes of unsent events (what the disk budget counts)")
    budget_bytes: int = Field(ge=0)
    oldest_pending_age_s: float | None = None
    last_seq: int = Field(ge=0)
    pending_from_seq: int = Field(ge=1)
    inflight: int = Field(ge=0)


class EvictionTelemetry(Model):
    total: int = Field(ge=0)
    by_priority: dict[str, int]
    by_kind: dict[str, int]


class UplinkTelemetry(Model):
    connects: int
    disconnects: int
    published: int
    acked: int
    retried: int
    resent: int
    rejected: dict[str, int] = Field(description="PUBACK reason >= 0x80 by name; the row stayed queued")
    queue_size_errors: int
    window: int
    last_disconnect: str | None = None


class DeviceTelemetry(Model):
    type: str
    state: str
    last_seen: str | None = None
    changed: str | None = None


class SystemTelemetry(Model):
    cpu_pct: float | None = None
    load_1m: float | None = None
    mem_pct: float | None = None
    mem_used_bytes: int | None = None
    rss_bytes: int | None = None
    disk_pct: float | None = None
    disk_free_bytes: int | None = None
    temperature_c: float | None = None


class Telemetry(Model):
    gateway_id: str
    ts: str = Field(pattern=TS_PATTERN)
    uptime_s: float
    outbox: OutboxTelemetry
    evicted: EvictionTelemetry
    uplink: UplinkTelemetry
    devices: dict[str, DeviceTelemetry]
    system: SystemTelemetry


# ---- commands (.../cmd/{name}) and replies (.../reply/{name}) --------------------------------------------------
COMMANDS = ("resend", "ping", "get_status", "reload_config", "snapshot")


class Command(Model):
    """Body of a command. Response topic and correlation data travel as MQTT 5 properties."""

    id: str | None = Field(default=None, max_length=128, description="caller's id, echoed in the reply and logs")
    issued_at: str | None = Field(default=None, pattern=TS_PATTERN)
    expires_at: str | None = Field(default=None, pattern=TS_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)


class ResendArgs(Model):
    from_seq: int = Field(ge=1)
    to_seq: int = Field(ge=1)


class NoArgs(Model):
    pass


class SnapshotArgs(Model):
    camera: str = Field(min_length=1, max_length=64)


ARGS = {"resend": ResendArgs, "ping": NoArgs, "get_status": NoArgs, "reload_config": NoArgs,
        "snapshot": SnapshotArgs}

ErrorCode = Literal["unknown_command", "malformed", "bad_args", "expired", "unauthorised", "too_large",
                    "not_supported", "no_cameras", "failed", "refused"]


class ReplyError(Model):
    code: ErrorCode
    message: str


class Reply(Model):
    ok: bool
    command: str
    gateway_id: str
    ts: str = Field(pattern=TS_PATTERN)
    id: str | None = None
    result: dict[str, Any] | None = None
    error: ReplyError | None = None


class ResendResult(Model):
    queued: int = Field(ge=0, description="events that will be published again")
    evicted: list[list[int]] = Field(default_factory=list, description="[from, to] ranges evicted by the disk budget")
    unavailable: list[list[int]] = Field(default_factory=list, description="ranges aged out of the resend window")
    not_yet_assigned: list[list[int]] = Field(default_factory=list, description="ranges beyond the last seq")
    pending: int = Field(default=0, ge=0, description="events in the range not sent yet (they go out anyway)")
