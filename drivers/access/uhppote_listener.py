"""The UDP socket controllers push their events to (function 0x20), shared by every controller that is
configured with the same listen host:port (the factory default is 60001 for all of them).

Packets are dispatched by the controller serial number in the packet. Packets that cannot be attributed
by serial (wrong size, garbage) are attributed by source address when it is a configured controller's,
so rejects are counted per device.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from typing import Callable

from .uhppote_codec import FN_EVENT, PACKET_LEN, SOM, SOM_V6_62

log = logging.getLogger("drivers.access.uhppote")

OnPacket = Callable[[bytes, tuple], None]
OnReject = Callable[[str], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "UhppoteListener"):
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            self.owner.dispatch(data, addr)
        except Exception:  # a handler bug must not kill the socket for every controller
            self.owner.stats["handler_errors"] += 1
            log.exception("uhppote listener handler failed")

    def error_received(self, exc: Exception) -> None:
        self.owner.stats["socket_errors"] += 1


class UhppoteListener:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._handlers: dict[int, tuple[OnPacket, OnReject]] = {}
        self._by_address: dict[str, int] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.stats = {"packets": 0, "rejected": 0, "unknown_controller": 0, "handler_errors": 0, "socket_errors": 0}

    @property
    def bound(self) -> tuple[str, int] | None:
        if self._transport is None:
            return None
        return self._transport.get_extra_info("sockname")[:2]

    async def register(self, serial: int, address: str, on_packet: OnPacket, on_reject: OnReject) -> None:
        self._handlers[serial] = (on_packet, on_reject)
        self._by_address[address] = serial
        if self._transport is None:
            loop = asyncio.get_running_loop()
            try:
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self.host, self.port))
            except OSError as exc:
                self.unregister(serial)
                raise OSError(exc.errno, f"cannot listen for controller events on UDP {self.host}:{self.port}: "
                                         f"{exc.strerror} (another program or gateway on this port?)") from None
            log.info("listening for pushed controller events", extra={"host": self.host, "port": self.port})

    def unregister(self, serial: int) -> None:
        self._handlers.pop(serial, None)
        self._by_address = {a: s for a, s in self._by_address.items() if s != serial}
        if not self._handlers and self._transport is not None:
            self._transport.close()
            self._transport = None

    def dispatch(self, data: bytes, addr) -> None:
        self.stats["packets"] += 1
        serial = None
        if len(data) == PACKET_LEN and data[0] in (SOM, SOM_V6_62) and data[1] == FN_EVENT:
            serial = struct.unpack_from("<I", data, 4)[0]
        handler = self._handlers.get(serial) if serial is not None else None
        if handler is not None:
            handler[0](data, addr)
            return
        self.stats["rejected"] += 1
        by_addr = self._handlers.get(self._by_address.get(addr[0], -1))
        if serial is not None:
            self.stats["unknown_controller"] += 1
            reason = "wrong_controller"
        elif len(data) != PACKET_LEN:
            reason = "bad_size"
        else:
            reason = "bad_header"
        if by_addr is not None:
            by_addr[1](reason)
