"""Modbus RTU requests and reply validation for the level-sensor bus, built on pymodbus 3's codec.

pymodbus does the protocol work: requests are pymodbus PDUs framed by its `FramerRTU` (the bytes on the wire
are pymodbus's), CRCs are its `FramerRTU.compute_CRC`, exception replies are decoded by its `DecodePDU`, and
the simulator is pymodbus's own RTU server.

Why not pymodbus's `AsyncModbusSerialClient` for the transaction itself: the gateway must count *per sensor*
why a poll failed (bad CRC, truncated frame, answer from a wrong address, noise) and the client only logs
those and then times out; its reconnect timers run on asyncio's clock, not ctx.clock; and a CRC-valid but
malformed reply makes its framer raise inside the transport's data callback. So the transaction loop
(rtu_master.py) and the verdict on the received bytes (`scan_reply`, here) are ours: pure, never raising,
and fuzzed with >100k frames in tests/test_bins_fuzz.py.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Literal

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
)

_REQUESTS = {3: ReadHoldingRegistersRequest, 4: ReadInputRegistersRequest}
_RESPONSES = {3: ReadHoldingRegistersResponse, 4: ReadInputRegistersResponse}
_CLIENT_FRAMER = FramerRTU(DecodePDU(is_server=False))
_SERVER_FRAMER = FramerRTU(DecodePDU(is_server=True))
_CLIENT_DECODER = DecodePDU(is_server=False)

Status = Literal["ok", "exception", "incomplete", "no_response", "crc_error", "truncated", "wrong_address",
                 "garbage"]
#: statuses that mean "a reply was on the wire but unusable" (worth one re-ask)
CORRUPTED = frozenset({"crc_error", "truncated", "wrong_address", "garbage"})

EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "device failure", 5: "acknowledge", 6: "device busy", 10: "gateway path unavailable",
                   11: "gateway target failed to respond"}


def build_read_request(unit: int, function: int, address: int, count: int = 1) -> bytes:
    """The RTU frame for "read `count` registers at `address`" (function 3 or 4), via pymodbus."""
    pdu = _REQUESTS[function](address=address, count=count, dev_id=unit)
    return _CLIENT_FRAMER.buildFrame(pdu)


def build_read_reply(unit: int, function: int, registers: list[int]) -> bytes:
    """The RTU reply a sensor sends for a read (used by tests and the simulator's self-checks)."""
    pdu = _RESPONSES[function](registers=list(registers), dev_id=unit)
    return _SERVER_FRAMER.buildFrame(pdu)


def crc_ok(frame: bytes) -> bool:
    """True if the last two bytes are the Modbus CRC-16 of the rest (pymodbus's CRC, wire byte order)."""
    if len(frame) < 4:
        return False
    return FramerRTU.check_CRC(frame[:-2], (frame[-2] << 8) | frame[-1])


def reply_length(count: int) -> int:
    """addr + fc + byte count + 2*count data + CRC."""
    return 5 + 2 * count


@dataclasses.dataclass(frozen=True)
class ReplyVerdict:
    status: Status
    registers: tuple[int, ...] = ()
    exception_code: int | None = None
    from_unit: int | None = None  # who answered, for wrong_address
    noise_bytes: int = 0  # bytes before the accepted frame that belonged to no frame

    @property
    def done(self) -> bool:
        return self.status != "incomplete"


def scan_reply(buf: bytes, unit: int, function: int, count: int, final: bool) -> ReplyVerdict:
    """Judge what arrived after asking `unit` for `count` registers with `function`.

    Looks for a CRC-valid reply from `unit` anywhere in `buf` (bytes before it are noise). Without one:
    `final=False` -> "incomplete" (keep listening); `final=True` (timeout or line idle) -> the most
    specific explanation of the bytes: wrong_address > crc_error > truncated > garbage, or no_response.
    Never raises, whatever `buf` holds.
    """
    try:
        return _scan(bytes(buf), unit, function, count, final)
    except Exception:  # defensive: a verdict must always come back (fuzzed; should be unreachable)
        return ReplyVerdict("garbage", noise_bytes=len(buf))


def _scan(buf: bytes, unit: int, function: int, count: int, final: bool) -> ReplyVerdict:
    n = len(buf)
    full_len = reply_length(count)
    saw_crc_error = saw_truncated = False
    wrong_from: int | None = None
    for i in range(n):
        addr = buf[i]
        if i + 1 >= n:
            if addr == unit:
                saw_truncated = True
            break
        fc = buf[i + 1]
        if fc == (function | 0x80):  # exception reply: addr, fc|0x80, code, CRC
            if i + 5 > n:
                if addr == unit:
                    saw_truncated = True
                continue
            frame = buf[i:i + 5]
            if not crc_ok(frame):
                if addr == unit:
                    saw_crc_error = True
                continue
            if addr != unit:
                wrong_from = addr
                continue
            pdu = _CLIENT_DECODER.decode(frame[1:-2])
            code = pdu.exception_code if isinstance(pdu, ExceptionResponse) else frame[2]
            return ReplyVerdict("exception", exception_code=int(code), noise_bytes=i)
        if fc != function:
            continue
        if i + 2 >= n:
            if addr == unit:
                saw_truncated = True
            continue
        if buf[i + 2] != 2 * count:
            continue
        if i + full_len > n:
            if addr == unit:
                saw_truncated = True
            continue
        frame = buf[i:i + full_len]
        if not crc_ok(frame):
            if addr == unit:
                saw_crc_error = True
            continue
        if addr != unit:
            wrong_from = addr
            continue
        # CRC, address, function and byte count are checked, so the data is exactly `count` big-endian
        # registers; unpacking them here is 10x faster than pymodbus's DecodePDU, which formats a debug
        # string for every frame (it matters for fuzzing, not for a 10 s poll).
        regs = struct.unpack_from(f">{count}H", frame, 3)
        return ReplyVerdict("ok", registers=tuple(regs), noise_bytes=i)
    if not final:
        return ReplyVerdict("incomplete")
    if n == 0:
        return ReplyVerdict("no_response")
    if wrong_from is not None:
        return ReplyVerdict("wrong_address", from_unit=wrong_from, noise_bytes=n)
    if saw_crc_error:
        return ReplyVerdict("crc_error", noise_bytes=n)
    if saw_truncated:
        return ReplyVerdict("truncated", noise_bytes=n)
    return ReplyVerdict("garbage", noise_bytes=n)


def to_signed16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value
