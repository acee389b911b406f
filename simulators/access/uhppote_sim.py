"""UHPPOTE / 微耕-style access controller simulator on a real UDP socket.

Speaks the controller's side of the 64-byte protocol: get-status (0x20), set-time (0x30), get-time (0x32),
set-listener (0x90), get-listener (0x92), get-controller (0x94, also to broadcast serial 0),
record-special-events (0x8E), get-event (0xB0), set-event-index (0xB2), get-event-index (0xB4). It keeps
an indexed event log in a ring buffer (old indexes answer "overwritten" like the real board) and pushes
every new record as a 0x20 packet to the configured listener.

The request decoding and reply encoding are the controller's half of the protocol, which `uhppoted` does
not implement (it only encodes requests and decodes replies); the field packing reuses uhppoted.encode.

    python -m simulators.access.uhppote_sim --serial 405419896 --port 60000 --listener 127.0.0.1:60001
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime as dt
import ipaddress
import random
import struct
import time
from typing import Callable
from zoneinfo import ZoneInfo

from uhppoted import encode as enc

SOM = 0x17
GET_STATUS, SET_TIME, GET_TIME = 0x20, 0x30, 0x32
RECORD_SPECIAL_EVENTS, SET_LISTENER, GET_LISTENER, GET_CONTROLLER = 0x8E, 0x90, 0x92, 0x94
GET_EVENT, SET_EVENT_INDEX, GET_EVENT_INDEX = 0xB0, 0xB2, 0xB4
MAGIC = 0x55AAAA55


@dataclasses.dataclass
class SimRecord:
    index: int
    type: int
    granted: bool
    door: int
    direction: int
    card: int
    timestamp: dt.datetime
    reason: int


def _bcd_datetime(v: dt.datetime, p: bytearray, off: int) -> None:
    enc.pack_datetime(v, p, off)


def _bcd(text: str) -> bytes:
    return bytes.fromhex(text)


def event_fields(p: bytearray, r: SimRecord | None) -> None:
    """Offsets 8..27: the record part shared by status, pushed events and get-event replies."""
    if r is None:
        return
    enc.pack_uint32(r.index, p, 8)
    p[12] = r.type
    p[13] = 1 if r.granted else 0
    p[14] = r.door
    p[15] = r.direction
    enc.pack_uint32(r.card, p, 16)
    _bcd_datetime(r.timestamp, p, 20)
    p[27] = r.reason


def status_packet(serial: int, r: SimRecord | None, *, doors_open=(False,) * 4, buttons=(False,) * 4,
                  system_time: dt.datetime | None = None, sequence_no: int = 0, relays: int = 0,
                  inputs: int = 0) -> bytes:
    """A get-status reply / pushed event (function 0x20). With no status fields it is the bare record."""
    p = bytearray(64)
    p[0], p[1] = SOM, GET_STATUS
    enc.pack_uint32(serial, p, 4)
    event_fields(p, r)
    for i in range(4):
        p[28 + i] = 1 if doors_open[i] else 0
        p[32 + i] = 1 if buttons[i] else 0
    if system_time is not None:
        p[37:40] = _bcd(system_time.strftime("%H%M%S"))
        p[51:54] = _bcd(system_time.strftime("%y%m%d"))
    enc.pack_uint32(sequence_no, p, 40)
    p[49], p[50] = relays, inputs
    return bytes(p)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sim: "UhppoteSimulator"):
        self.sim = sim

    def connection_made(self, transport) -> None:
        self.sim._transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.sim._on_request(data, addr)

    def error_received(self, exc) -> None:  # e.g. ICMP port unreachable for a push to a stopped gateway
        self.sim.stats["send_errors"] += 1


class UhppoteSimulator:
    def __init__(self, serial: int, host: str = "127.0.0.1", port: int = 0, *, timezone: str = "Asia/Shanghai",
                 clock: Callable[[], float] = time.time, capacity: int = 100_000,
                 listener: tuple[str, int] | None = None, doors: int = 4):
        self.serial = serial
        self.host, self.port = host, port
        self.tz = ZoneInfo(timezone)
        self.clock = clock
        self.clock_offset_s = 0.0  # controller clock error (set-time corrects it)
        self.capacity = capacity
        self.listener = listener
        self.doors = doors
        self.log: collections.OrderedDict[int, SimRecord] = collections.OrderedDict()
        self.last_index = 0
        self.downloaded_index = 0
        self.special_events = False
        self.doors_open = [False] * 4
        self.buttons = [False] * 4
        self.sequence_no = 0
        self.offline = False  # network cable pulled: no replies, no pushes (records are still logged)
        self.push_enabled = True
        self.push_loss = 0.0  # probability a push is lost (UDP is lossy)
        self.rng = random.Random(1)
        self.stats: collections.Counter = collections.Counter()
        self._transport: asyncio.DatagramTransport | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> "UhppoteSimulator":
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(self.host, self.port),
                                            allow_broadcast=True)
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def now(self) -> dt.datetime:
        """The controller's own (local, naive) clock."""
        return dt.datetime.fromtimestamp(int(self.clock() + self.clock_offset_s), self.tz).replace(tzinfo=None)

    # ---- the event log ------------------------------------------------------------------------------
    def add(self, type_: int, granted: bool, door: int, direction: int, card: int, reason: int,
            timestamp: dt.datetime | None = None, push: bool = True) -> int:
        self.last_index += 1
        r = SimRecord(self.last_index, type_, granted, door, direction, card, timestamp or self.now(), reason)
        self.log[r.index] = r
        while len(self.log) > self.capacity:
            self.log.popitem(last=False)
        if push:
            self.push(r)
        return r.index

    def swipe(self, card: int, door: int = 1, granted: bool = True, direction: int = 1,
              reason: int | None = None) -> int:
        return self.add(1, granted, door, direction, card, reason or (1 if granted else 6))

    def door_opened(self, door: int) -> int:
        self.doors_open[door - 1] = True
        return self.add(2, True, door, 1, 0, 23)

    def door_closed(self, door: int) -> int:
        self.doors_open[door - 1] = False
        return self.add(2, True, door, 1, 0, 24)

    def button(self, door: int) -> int:
        return self.add(2, True, door, 2, 0, 20)

    def forced(self, door: int) -> int:
        self.doors_open[door - 1] = True
        return self.add(3, False, door, 1, 0, 38)

    def held_open(self, door: int) -> int:
        return self.add(3, False, door, 1, 0, 37)

    def fire(self, door: int = 1) -> int:
        return self.add(3, False, door, 1, 0, 39)

    def remote_open(self, door: int, card: int = 0) -> int:
        return self.add(2, True, door, 1, card, 44)

    def record(self, index: int) -> SimRecord | None:
        return self.log.get(index)

    @property
    def first_index(self) -> int:
        return next(iter(self.log)) if self.log else self.last_index + 1

    # ---- packets ------------------------------------------------------------------------------------
    def status(self) -> bytes:
        self.sequence_no += 1
        return status_packet(self.serial, self.log.get(self.last_index), doors_open=self.doors_open,
                             buttons=self.buttons, system_time=self.now(), sequence_no=self.sequence_no)

    def push(self, r: SimRecord) -> None:
        if self.offline or not self.push_enabled or self.listener is None or self._transport is None:
            self.stats["pushes_not_sent"] += 1
            return
        if self.push_loss and self.rng.random() < self.push_loss:
            self.stats["pushes_lost"] += 1
            return
        self.sequence_no += 1
        pkt = status_packet(self.serial, r, doors_open=self.doors_open, buttons=self.buttons,
                            system_time=self.now(), sequence_no=self.sequence_no)
        self._transport.sendto(pkt, self.listener)
        self.stats["pushes"] += 1

    def send_raw_to_listener(self, data: bytes) -> None:
        """Fault injection: arbitrary bytes to the gateway's listener, from the controller's address."""
        if self._transport is not None and self.listener is not None:
            self._transport.sendto(data, self.listener)

    def _reply(self, function: int) -> bytearray:
        p = bytearray(64)
        p[0], p[1] = SOM, function
        enc.pack_uint32(self.serial, p, 4)
        return p

    def _on_request(self, data: bytes, addr) -> None:
        if len(data) != 64 or data[0] != SOM:
            self.stats["bad_requests"] += 1
            return
        fn = data[1]
        serial = struct.unpack_from("<I", data, 4)[0]
        if serial != self.serial and not (fn == GET_CONTROLLER and serial == 0):
            self.stats["not_for_me"] += 1
            return
        self.stats[f"fn_{fn:02x}"] += 1
        if self.offline:
            return
        reply = self._handle(fn, data)
        if reply is not None and self._transport is not None:
            self._transport.sendto(bytes(reply), addr)

    def _handle(self, fn: int, req: bytes) -> bytes | bytearray | None:
        if fn == GET_STATUS:
            return self.status()
        if fn == GET_TIME:
            p = self._reply(GET_TIME)
            _bcd_datetime(self.now(), p, 8)
            return p
        if fn == SET_TIME:
            try:
                wanted = dt.datetime.strptime(req[8:15].hex(), "%Y%m%d%H%M%S")
            except ValueError:
                self.stats["bad_requests"] += 1
                return None
            self.clock_offset_s += (wanted - self.now()).total_seconds()
            p = self._reply(SET_TIME)
            _bcd_datetime(self.now(), p, 8)
            return p
        if fn == GET_EVENT:
            idx = struct.unpack_from("<I", req, 8)[0]
            p = self._reply(GET_EVENT)
            r = self.log.get(idx)
            if r is not None:
                event_fields(p, r)
            else:
                enc.pack_uint32(idx, p, 8)
                p[12] = 0xFF if idx < self.first_index else 0x00  # overwritten / not (yet) recorded
            return p
        if fn == GET_EVENT_INDEX:
            p = self._reply(GET_EVENT_INDEX)
            enc.pack_uint32(self.downloaded_index, p, 8)
            return p
        if fn == SET_EVENT_INDEX:
            ok = struct.unpack_from("<I", req, 12)[0] == MAGIC
            if ok:
                self.downloaded_index = struct.unpack_from("<I", req, 8)[0]
            p = self._reply(SET_EVENT_INDEX)
            p[8] = 1 if ok else 0
            return p
        if fn == SET_LISTENER:
            ip = str(ipaddress.IPv4Address(bytes(req[8:12])))
            port = struct.unpack_from("<H", req, 12)[0]
            self.listener = (ip, port)
            p = self._reply(SET_LISTENER)
            p[8] = 1
            return p
        if fn == GET_LISTENER:
            p = self._reply(GET_LISTENER)
            ip, port = self.listener or ("0.0.0.0", 0)
            p[8:12] = ipaddress.IPv4Address(ip).packed
            enc.pack_uint16(port, p, 12)
            return p
        if fn == RECORD_SPECIAL_EVENTS:
            self.special_events = bool(req[8])
            p = self._reply(RECORD_SPECIAL_EVENTS)
            p[8] = 1
            return p
        if fn == GET_CONTROLLER:
            p = self._reply(GET_CONTROLLER)
            p[8:12] = ipaddress.IPv4Address(self.host if self.host != "0.0.0.0" else "127.0.0.1").packed
            p[12:16] = ipaddress.IPv4Address("255.255.255.0").packed
            p[16:20] = ipaddress.IPv4Address("0.0.0.0").packed
            p[20:26] = bytes([0x00, 0x12, 0x23, 0x34, 0x45, 0x56])
            p[26:28] = bytes([0x08, 0x92])  # firmware v8.92
            p[28:32] = _bcd("20220823")
            return p
        self.stats["unsupported"] += 1
        return None


async def _main(args) -> None:
    host, _, port = args.listener.partition(":") if args.listener else ("", "", "")
    sim = await UhppoteSimulator(args.serial, args.host, args.port,
                                 listener=(host, int(port or 60001)) if host else None).start()
    print(f"controller {args.serial} on udp {sim.host}:{sim.port}", flush=True)
    card = 8165537
    while True:
        await asyncio.sleep(args.swipe_every or 3600)
        if args.swipe_every:
            sim.swipe(card, door=1 + sim.last_index % 4, granted=sim.last_index % 5 != 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="UHPPOTE controller simulator (UDP)")
    ap.add_argument("--serial", type=int, default=405419896)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=60000)
    ap.add_argument("--listener", help="ip:port to push events to")
    ap.add_argument("--swipe-every", type=float, default=0)
    try:
        asyncio.run(_main(ap.parse_args(argv)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
