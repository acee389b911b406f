"""UHPPOTE / 微耕 controller records: decoding (through the `uhppoted` package) and what each record means.

The 64-byte little-endian packets with BCD times are encoded and decoded by `uhppoted` (encode.* for the
requests this gateway sends, decode.* for the replies and pushed events). What uhppoted does not do, and
is done here: reject packets before decoding with a reason we can count, turn a record into an event
kind + payload, and convert the controller's local BCD time to UTC.

Reason codes (the controller's own table; 5-15 and 18 are the ways a card is refused):
1 swipe, 20 push button, 23 door open, 24 door closed, 25 super password, 28 power on, 29 reset,
31-33 push button refused, 34 threat (duress), 37 open too long, 38 forced open, 39 fire, 40 forced close,
41 anti-theft, 42 24-hour zone, 43 emergency call, 44 remote open, 45 remote open (USB reader).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from uhppoted import decode

SOM = 0x17
SOM_V6_62 = 0x19  # firmware v6.62 marks pushed events with 0x19
FN_EVENT = 0x20
PACKET_LEN = 64

# record types
TYPE_NONE = 0x00  # get-event: no record at this index (yet)
TYPE_SWIPE = 0x01
TYPE_DOOR = 0x02
TYPE_ALARM = 0x03
TYPE_OVERWRITTEN = 0xFF  # get-event: the ring buffer has overwritten this index

REASONS: dict[int, str] = {
    1: "swipe", 5: "denied: PC control", 6: "denied: no privilege", 7: "denied: wrong password",
    8: "denied: anti-passback", 9: "denied: more cards", 10: "denied: first card open",
    11: "denied: door set normally closed", 12: "denied: interlock", 13: "denied: limited times",
    14: "denied", 15: "denied: invalid time zone", 18: "denied", 20: "push button", 23: "door open",
    24: "door closed", 25: "super password open door", 28: "controller power on", 29: "controller reset",
    31: "push button refused: forced lock", 32: "push button refused: not online", 33: "push button refused: interlock",
    34: "threat (duress)", 37: "door open too long", 38: "door forced open", 39: "fire alarm", 40: "forced close",
    41: "anti-theft alarm", 42: "24-hour zone alarm", 43: "emergency call", 44: "remote open door",
    45: "remote open door (USB reader)",
}
DENIAL_REASONS = frozenset(range(5, 16)) | {18}
#: records that say something about the controller, not a door: kept as counters, not events
INFO_REASONS = frozenset({28, 29})


class PacketError(ValueError):
    """A packet that is not a valid controller packet; `reason` names the health counter."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Record:
    controller: int
    index: int
    type: int
    granted: bool
    door: int
    direction: int
    card: int
    timestamp: dt.datetime | None  # controller local time; None if the BCD was invalid
    reason: int

    @property
    def device_time(self) -> str | None:
        return self.timestamp.strftime("%Y-%m-%d %H:%M:%S") if self.timestamp else None


@dataclasses.dataclass(frozen=True)
class Pushed:
    """A pushed status/event packet (function 0x20): the newest record plus live door states."""

    controller: int
    record: Record | None  # None when the packet carries no record (event index 0)
    doors_open: tuple[bool, bool, bool, bool]
    buttons: tuple[bool, bool, bool, bool]
    system_time: dt.datetime | None
    sequence_no: int


def check_packet(packet: bytes, function: int | None = None) -> None:
    """Cheap structural checks, so that rejects are counted by reason instead of as decoder errors."""
    if len(packet) != PACKET_LEN:
        raise PacketError("bad_size", f"{len(packet)} bytes, expected 64")
    if packet[0] not in (SOM, SOM_V6_62) or (packet[0] == SOM_V6_62 and packet[1] != FN_EVENT):
        raise PacketError("bad_header", f"start byte 0x{packet[0]:02x}")
    if function is not None and packet[1] != function:
        raise PacketError("bad_function", f"function 0x{packet[1]:02x}, expected 0x{function:02x}")


def parse_pushed(packet: bytes) -> Pushed:
    """Decode a pushed event packet. Raises PacketError, never anything else."""
    check_packet(packet, FN_EVENT)
    try:
        e = decode.event(packet)
    except (ValueError, IndexError, TypeError) as exc:  # uhppoted raises ValueError; the rest are belt and braces
        raise PacketError("bad_packet", str(exc)) from None
    record = None
    if e.event_index:
        record = Record(e.controller, e.event_index, e.event_type, bool(e.event_access_granted), e.event_door,
                        e.event_direction, e.event_card, e.event_timestamp, e.event_reason)
    sys_time = None
    if e.system_date is not None and e.system_time is not None:
        sys_time = dt.datetime.combine(e.system_date, e.system_time)
    return Pushed(e.controller, record, (e.door_1_open, e.door_2_open, e.door_3_open, e.door_4_open),
                  (e.door_1_button, e.door_2_button, e.door_3_button, e.door_4_button), sys_time, e.sequence_no)


def record_from_get_event(resp: Any) -> Record:
    """uhppoted GetEventResponse -> Record."""
    return Record(resp.controller, resp.index, resp.event_type, bool(resp.access_granted), resp.door,
                  resp.direction, resp.card, resp.timestamp, resp.reason)


def record_from_status(resp: Any) -> Record | None:
    if not resp.event_index:
        return None
    return Record(resp.controller, resp.event_index, resp.event_type, bool(resp.event_access_granted),
                  resp.event_door, resp.event_direction, resp.event_card, resp.event_timestamp, resp.event_reason)


def local_to_utc_ms(local: dt.datetime, tz: ZoneInfo) -> int:
    return int(local.replace(tzinfo=tz).timestamp() * 1000)


def direction_name(direction: int) -> str | None:
    return {1: "in", 2: "out"}.get(direction)


@dataclasses.dataclass(frozen=True)
class Mapped:
    kind: str
    payload: dict[str, Any]
    severity: str | None = None


def map_record(record: Record, doors: dict[int, str] | None = None) -> Mapped | None:
    """What a record means as an event. None for records that are not door/credential events
    (power-on, reset, unknown alarm codes): the caller counts those."""
    if record.type in (TYPE_NONE, TYPE_OVERWRITTEN):
        return None
    reason = record.reason
    payload: dict[str, Any] = {
        "controller": str(record.controller),
        "door": record.door if 1 <= record.door <= 4 else None,
        "door_name": (doors or {}).get(record.door),
        "direction": direction_name(record.direction),
        "credential": str(record.card) if record.card else None,
        "reason_code": reason,
        "reason": REASONS.get(reason, f"reason {reason}"),
        "record_index": record.index,
        "device_time": record.device_time,
    }
    payload = {k: v for k, v in payload.items() if v is not None}

    def access(credential_type: str | None, granted: bool | None = None, severity: str | None = None) -> Mapped:
        ok = record.granted if granted is None else granted
        p = dict(payload)
        if credential_type:
            p["credential_type"] = credential_type
        return Mapped("access.granted" if ok else "access.denied", p, severity)

    if reason in DENIAL_REASONS:
        return access("card", granted=False)
    if reason == 1:
        return access("card")
    if reason == 20:
        return Mapped("door.button", {**payload, "credential_type": "button"})
    if reason in (31, 32, 33):
        return access("button", granted=False)
    if reason == 23:
        return Mapped("door.opened", payload)
    if reason == 24:
        return Mapped("door.closed", payload)
    if reason == 25:
        return access("pin", granted=True)
    if reason == 34:
        return access("card", severity="critical")  # duress: the door opens, someone is being forced
    if reason == 37:
        return Mapped("door.held_open", payload)
    if reason == 38:
        return Mapped("door.forced", payload)
    if reason == 39:
        return Mapped("door.fire_alarm", payload)
    if reason in (44, 45):
        return access("remote")
    if reason in INFO_REASONS:
        return None
    if record.type == TYPE_SWIPE:  # an unlisted swipe reason still is a pass or a refusal
        return access("card")
    return None
