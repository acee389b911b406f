"""One Modbus RTU transaction at a time on a SerialLink: send a pymodbus-built request, judge the reply.

Wire timing here is real time on purpose (bytes travel in real time; a FakeClock must not make a sensor
"time out" in zero seconds). Scheduling — poll interval, backoff, offline decisions — is the driver's and
runs on ctx.clock.
"""
from __future__ import annotations

import asyncio

from .modbus_rtu import ReplyVerdict, build_read_request, scan_reply
from .serial_link import SerialLink

#: after a reply-shaped but broken frame, this much line silence ends the wait early (USB-serial adapters
#: deliver in ~16 ms chunks, so much more than the 3.5-character RTU gap)
IDLE_GAP_S = 0.1


def inter_frame_s(baudrate: int) -> float:
    """RTU needs >= 3.5 characters of silence between frames (11 bits each: 4 ms at 9600), plus a margin."""
    return 3.5 * 11 / max(1200, baudrate) + 0.001


class RtuMaster:
    def __init__(self, link: SerialLink, timeout_s: float = 0.5):
        self.link = link
        self.timeout_s = timeout_s
        self.gap_s = inter_frame_s(link.cfg.baudrate)
        self.stray_bytes = 0  # bytes that arrived while nobody was asked (noise, late replies)
        self.transactions = 0
        self.last_request = b""

    async def read_registers(self, unit: int, function: int, address: int, count: int = 1,
                             timeout_s: float | None = None) -> ReplyVerdict:
        """Ask and wait. Raises PortLost if the port disappears; every other outcome is a verdict."""
        loop = asyncio.get_running_loop()
        stray = self.link.take()
        self.stray_bytes += len(stray)
        request = build_read_request(unit, function, address, count)
        self.last_request = request
        self.transactions += 1
        self.link.write(request)
        deadline = loop.time() + (self.timeout_s if timeout_s is None else timeout_s)
        buf = bytearray()
        try:
            while True:
                buf += self.link.take()
                verdict = scan_reply(buf, unit, function, count, final=False)
                if verdict.done:
                    return verdict
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return scan_reply(buf, unit, function, count, final=True)
                if buf:
                    got = await self.link.wait_data(min(remaining, IDLE_GAP_S))
                    if not got:
                        early = scan_reply(buf, unit, function, count, final=True)
                        if early.status in ("crc_error", "truncated", "wrong_address"):
                            return early  # a broken reply and then silence: no point waiting any longer
                else:
                    await self.link.wait_data(remaining)
        finally:
            await asyncio.sleep(self.gap_s)
