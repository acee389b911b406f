"""Registry of event kinds: what each kind means, its default severity, its uplink priority, and the
pydantic model its payload must satisfy.

The payload models double as the JSON Schemas of the MQTT contract (cloud_bridge exports them), so a field
added here is a contract change: add, never rename.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .event import EventError, Severity


class Priority(enum.IntEnum):
    """Uplink / disk-budget priority. When the disk budget is exceeded the lowest priority goes first."""

    TELEMETRY = 0
    STATUS = 1
    OBSERVATION = 2
    ACCESS = 3
    ALARM = 4


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- access control -------------------------------------------------------------------------------
class AccessPayload(Payload):
    controller: str = Field(description="controller or reader id (serial number for UHPPOTE)")
    door: int | None = Field(default=None, description="door number on the controller, 1..4")
    door_name: str | None = None
    direction: Literal["in", "out"] | None = None
    credential: str | None = Field(default=None, description="card number / facility:card / PIN (never a secret)")
    credential_type: Literal["card", "wiegand26", "wiegand34", "pin", "remote", "button", "other"] | None = None
    reason_code: int | None = None
    reason: str | None = None
    record_index: int | None = Field(default=None, description="controller's own event index (backfill key)")
    device_time: str | None = Field(default=None, description="controller clock time of the record, as sent")
    facility_code: int | None = Field(default=None, description="Wiegand facility code, when the format has one")
    card_number: int | None = Field(default=None, description="Wiegand card number within the facility")


class DoorPayload(AccessPayload):
    duration_s: float | None = None


# ---- devices ----------------------------------------------------------------------------------------
class DeviceStatePayload(Payload):
    device: str
    device_type: str | None = None
    reason: str | None = None
    missed_polls: int | None = None
    offline_s: float | None = None


class TamperPayload(Payload):
    device: str
    reader: str | None = None
    active: bool = True


class KeypadPayload(Payload):
    device: str
    reader: str | None = None
    keys: str


# ---- bins -------------------------------------------------------------------------------------------
class BinLevelPayload(Payload):
    bin: str
    station: str | None = None
    fill_pct: float = Field(ge=0, le=100)
    distance_mm: int | None = None
    temperature_c: float | None = None
    tilt_deg: float | None = None
    sensor: str | None = None


class BinFullPayload(Payload):
    bin: str
    station: str | None = None
    fill_pct: float | None = None
    state: Literal["raised", "cleared"] = "raised"
    evidence: list[Literal["sensor", "vision"]] = Field(default_factory=lambda: ["sensor"])
    threshold_pct: float | None = None


class BinTemperaturePayload(Payload):
    bin: str
    station: str | None = None
    temperature_c: float
    rise_c_per_min: float | None = None
    trigger: Literal["absolute", "rate_of_rise", "cleared"] = "absolute"
    threshold: float | None = None


# ---- vision -----------------------------------------------------------------------------------------
class FireLanePayload(Payload):
    zone: str
    camera: str
    object: str = Field(description="detector label, or 'unknown' for clutter found by change detection")
    track_id: int | None = None
    score: float | None = None
    box: list[float] | None = None
    duration_s: float = 0.0
    state: Literal["blocked", "update", "cleared"] = "blocked"
    episode: str | None = Field(default=None, description="id shared by the blocked/update/cleared events")


class WastePayload(Payload):
    station: str | None = None
    zone: str | None = None
    camera: str | None = None
    object: str | None = None
    duration_s: float | None = None
    state: Literal["raised", "cleared"] = "raised"
    window: str | None = Field(default=None, description="the drop window the event fell outside of")
    episode: str | None = None


class CameraStatePayload(Payload):
    camera: str
    reason: str | None = None
    offline_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None


# ---- gateway ----------------------------------------------------------------------------------------
class AlertPayload(Payload):
    alert_id: str
    alert_kind: str
    state: Literal["raised", "updated", "acknowledged", "resolved", "cleared"]
    zone: str | None = None
    title: str
    detail: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = None
    note: str | None = None


class StorageEvictionPayload(Payload):
    evicted: dict[str, int]
    budget_bytes: int
    used_bytes: int


class GenericPayload(BaseModel):
    model_config = ConfigDict(extra="allow")


@dataclasses.dataclass(frozen=True)
class KindSpec:
    kind: str
    description: str
    payload_model: type[BaseModel]
    severity: Severity = Severity.INFO
    priority: Priority = Priority.OBSERVATION


KINDS: dict[str, KindSpec] = {}


def register_kind(kind: str, description: str, payload_model: type[BaseModel],
                  severity: Severity = Severity.INFO, priority: Priority = Priority.OBSERVATION) -> KindSpec:
    if kind in KINDS and KINDS[kind].payload_model is not payload_model:
        raise ValueError(f"event kind {kind!r} registered twice with different payloads")
    spec = KindSpec(kind, description, payload_model, severity, priority)
    KINDS[kind] = spec
    return spec


def kind_spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise EventError(f"kind: {kind!r} is not a registered event kind") from None


def validate_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a payload; raises EventError naming the field."""
    spec = kind_spec(kind)
    try:
        model = spec.payload_model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        raise EventError(f"{kind} payload.{where}: {err['msg']}") from None
    return model.model_dump(mode="json", exclude_none=True)


S, P = Severity, Priority
register_kind("access.granted", "a credential opened a door", AccessPayload, S.INFO, P.ACCESS)
register_kind("access.denied", "a credential was refused", AccessPayload, S.WARNING, P.ACCESS)
register_kind("door.forced", "a door opened without a valid credential", DoorPayload, S.CRITICAL, P.ALARM)
register_kind("door.held_open", "a door stayed open too long", DoorPayload, S.WARNING, P.ALARM)
register_kind("door.opened", "door contact opened", DoorPayload, S.INFO, P.ACCESS)
register_kind("door.closed", "door contact closed", DoorPayload, S.INFO, P.ACCESS)
register_kind("door.button", "exit button pressed", DoorPayload, S.INFO, P.ACCESS)
register_kind("door.fire_alarm", "controller reports a fire-alarm input", DoorPayload, S.CRITICAL, P.ALARM)
register_kind("reader.keypad", "keys entered on a reader keypad", KeypadPayload, S.INFO, P.ACCESS)
register_kind("reader.card", "a credential was presented at a reader the gateway reports without deciding",
              AccessPayload, S.INFO, P.ACCESS)
register_kind("reader.tamper", "reader tamper switch", TamperPayload, S.CRITICAL, P.ALARM)
register_kind("bin.level", "bin fill level reading", BinLevelPayload, S.INFO, P.TELEMETRY)
register_kind("bin.full", "bin is full / no longer full", BinFullPayload, S.WARNING, P.OBSERVATION)
register_kind("bin.temperature", "bin temperature alarm (fire risk)", BinTemperaturePayload, S.CRITICAL, P.ALARM)
register_kind("fire_lane.blocked", "an object stands in a fire lane", FireLanePayload, S.CRITICAL, P.ALARM)
register_kind("fire_lane.cleared", "a blocked fire lane is free again", FireLanePayload, S.INFO, P.ALARM)
register_kind("waste.litter", "litter left on keep-clear ground", WastePayload, S.WARNING, P.OBSERVATION)
register_kind("waste.off_hours_drop", "waste dropped outside the drop hours", WastePayload, S.WARNING, P.OBSERVATION)
register_kind("waste.overflow", "bin overflow seen by a camera", WastePayload, S.WARNING, P.OBSERVATION)
register_kind("camera.offline", "a camera stopped delivering frames", CameraStatePayload, S.WARNING, P.STATUS)
register_kind("camera.online", "a camera delivers frames again", CameraStatePayload, S.INFO, P.STATUS)
register_kind("device.offline", "a device stopped answering", DeviceStatePayload, S.WARNING, P.STATUS)
register_kind("device.online", "a device answers (again)", DeviceStatePayload, S.INFO, P.STATUS)
register_kind("alert", "alert lifecycle change", AlertPayload, S.WARNING, P.ALARM)
register_kind("gateway.storage_eviction", "disk budget exceeded; events were evicted", StorageEvictionPayload,
              S.CRITICAL, P.ALARM)
register_kind("gateway.started", "the gateway process started", GenericPayload, S.INFO, P.STATUS)
register_kind("gateway.stopped", "the gateway process stopped cleanly", GenericPayload, S.INFO, P.STATUS)
register_kind("gateway.test", "test event (edge doctor, benchmarks)", GenericPayload, S.INFO, P.TELEMETRY)
register_kind("config.changed", "a person changed the configuration (console zone editor)", GenericPayload,
              S.INFO, P.STATUS)
del S, P
