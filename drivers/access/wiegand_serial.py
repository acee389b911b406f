"""Wiegand reader behind a Wiegand-to-serial converter: frames per the configured profile
(drivers/access/converter.py), bits decoded with parity (drivers/access/wiegand.py).

A converter is silent until a card is presented, so "offline" here means the port itself failed
(USB unplugged, adapter died); the port is reopened with backoff and device.offline/online emitted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import serial

from edge.runtime.component import Component

from .cards import card_event
from .converter import ConverterParser
from .reject_log import RejectLog
from .serial_link import Backoff, open_port
from .wiegand import WiegandError, decode_bits

log = logging.getLogger("drivers.access.wiegand")

IDLE_FLUSH_S = 0.3  # an unterminated ASCII line counts once the converter has been quiet this long


class WiegandSerialDriver(Component):
    critical = False

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"access.{cfg.id}"
        self.state = "unknown"
        self.last_error: str | None = None
        self.counters: dict[str, int] = {"opens": 0, "open_failures": 0, "port_errors": 0, "cards": 0,
                                         "parity_errors": 0, "bad_length": 0, "bad_bits": 0}
        self._parser = ConverterParser(cfg.profile, cfg.format)
        self._rejects = RejectLog(log, cfg.id)

    async def run(self, ctx) -> None:
        backoff = Backoff(0.5, self.cfg.reconnect_max_s)
        while True:
            try:
                port = open_port(self.cfg.serial)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.counters["open_failures"] += 1
                await self._set_state(ctx, "offline", f"cannot open {self.cfg.serial.port}: {exc}")
                await ctx.clock.sleep(backoff.next())
                continue
            self.counters["opens"] += 1
            backoff.reset()
            await self._set_state(ctx, "online", "port open")
            try:
                reason = await self._read_until_error(ctx, port)
            finally:
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
            self.counters["port_errors"] += 1
            await self._set_state(ctx, "offline", reason)
            await ctx.clock.sleep(backoff.next())

    async def _read_until_error(self, ctx, port: serial.Serial) -> str:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        fd = port.fileno()
        loop.add_reader(fd, readable.set)
        last_rx = time.monotonic()
        try:
            while True:
                try:  # asyncio.timeout: wait_for can swallow a racing cancel on Python 3.11
                    async with asyncio.timeout(IDLE_FLUSH_S):
                        await readable.wait()
                except TimeoutError:
                    if time.monotonic() - last_rx >= IDLE_FLUSH_S:
                        self._cards(ctx, self._parser.flush())
                    continue
                readable.clear()
                try:
                    data = port.read(4096)
                except Exception as exc:  # SerialException, OSError, termios.error: the adapter is gone
                    return f"serial port lost ({exc})"
                if data:
                    last_rx = time.monotonic()
                    self._cards(ctx, self._parser.feed(data))
        finally:
            loop.remove_reader(fd)

    def _cards(self, ctx, frames: list[str]) -> None:
        self._rejects.check({**self._parser.stats, "parity_errors": self.counters["parity_errors"],
                             "bad_length": self.counters["bad_length"]}, "converter input")
        for bits in frames:
            try:
                card = decode_bits(bits, self.cfg.format)
            except WiegandError as exc:
                self.counters[{"parity": "parity_errors", "bad_length": "bad_length"}.get(exc.reason,
                                                                                          "bad_bits")] += 1
                self.last_error = f"card read rejected: {exc}"
                continue
            self.counters["cards"] += 1
            kind, payload = card_event(self.cfg, card=card)
            ctx.emit(ctx.make_event(kind, self.cfg.id, payload))

    async def _set_state(self, ctx, state: str, reason: str) -> None:
        if state == "offline":
            self.last_error = reason
        if state == self.state:
            return
        if self.state == "unknown" and state == "online":
            reason = "gateway started"
        self.state = state
        kind = "device.online" if state == "online" else "device.offline"
        ctx.emit(ctx.make_event(kind, self.cfg.id, {"device": self.cfg.id, "device_type": "wiegand_serial",
                                                    "reason": reason}))
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "wiegand_serial", state,
                             {"port": str(self.cfg.serial.port), "reason": reason}, state == "online")

    def health(self) -> dict[str, Any]:
        # device_state / device_error: the supervisor's own state / last_error keys sit beside these
        return {"device_state": self.state, "port": str(self.cfg.serial.port), "profile": self.cfg.profile,
                "device_error": self.last_error, "counters": dict(self.counters), "frames": dict(self._parser.stats)}
