"""Driver for one streaming UART ultrasonic sensor (DFRobot A02YYUW / DYP UART auto mode) above one bin.

The sensor pushes `FF H L SUM` frames about ten times a second. Bytes are collected as they arrive and
evaluated every `evaluate_every_s` (ctx.clock): the valid echoes of that period go through the median filter
and the bin logic. No valid frame for `offline_after_s` -> device.offline; frames again -> device.online.
Checksum errors, garbage and no-echo frames are counted, never fatal. An unplugged adapter is reopened with
exponential backoff.
"""
from __future__ import annotations

from typing import Any

from edge.config.devices import UartLevelSensor
from edge.events import EventError
from edge.runtime.component import Component

from .level import BinLevelLogic
from .link_state import LinkState
from .serial_link import PortLost, SerialLink
from .timing import ClockSleeper
from .uart_frame import UartFrameParser

BACKOFF_MIN_S = 1.0


class UartLevelDriver(Component):
    def __init__(self, cfg: UartLevelSensor):
        self.cfg = cfg
        self.name = f"bins.uart.{cfg.id}"
        self.link = SerialLink(cfg.serial)
        self.parser = UartFrameParser()
        self.logic = BinLevelLogic(cfg, cfg.id)
        self.sleeper = ClockSleeper()
        self.ctx = None
        self.state: LinkState | None = None
        self.last_frame_at: float | None = None
        self.started_at: float | None = None
        self.evaluations = 0
        self.port_losses = 0
        self.open_failures = 0
        self.emit_errors = 0
        self.backoff_s = BACKOFF_MIN_S
        self.last_error: str | None = None

    async def run(self, ctx) -> None:
        self.ctx = ctx
        self.sleeper.clock = ctx.clock
        if self.state is None:
            self.state = LinkState(ctx, self.cfg.id, "uart_level_sensor", 1)
        self.started_at = ctx.clock.monotonic()
        try:
            while True:
                if not self.link.is_open and not await self._open():
                    await self.sleeper.sleep(self.backoff_s)
                    self.backoff_s = min(self.backoff_s * 2, self.cfg.reconnect_max_s)
                    continue
                await self.sleeper.sleep(self.cfg.evaluate_every_s)
                await self._evaluate()
        finally:
            self.link.close()

    async def _open(self) -> bool:
        try:
            self.link.open()
        except PortLost as exc:
            self.open_failures += 1
            if self.state.state != "offline":
                self.ctx.log.warning("cannot open the UART level sensor port; retrying with backoff",
                                     extra={"device": self.cfg.id, "port": self.cfg.serial.port, "error": str(exc)})
            self.last_error = str(exc)
            if await self.state.miss(str(exc), {"port": self.cfg.serial.port}, immediate=True):
                self.logic.reset_filters()
            return False
        self.backoff_s = BACKOFF_MIN_S
        self.parser.reset()
        # the sensor has this long from (re)open to show it is alive
        self.last_frame_at = self.ctx.clock.monotonic()
        return True

    async def _evaluate(self) -> None:
        now = self.ctx.clock.monotonic()
        self.evaluations += 1
        data = self.link.take()  # bytes that arrived before a loss are still judged
        before = self.parser.stats.frames
        values = self.parser.feed(data) if data else []
        if not self.link.is_open:
            self.port_losses += 1
            self.last_error = self.link.lost_reason or "port closed"
            self.ctx.log.warning("UART level sensor lost its serial port; will reopen with backoff",
                                 extra={"device": self.cfg.id, "port": self.cfg.serial.port,
                                        "reason": self.last_error})
            if await self.state.miss(self.last_error, self._info(), immediate=True):
                self.logic.reset_filters()
            return
        if self.parser.stats.frames > before:
            self.last_frame_at = now
            await self.state.seen(self._info())
            self._emit(self.logic.update(now, [v for v in values if v is not None]))
        elif self.last_frame_at is not None and now - self.last_frame_at >= self.cfg.offline_after_s:
            reason = "garbage only, no valid frame" if data else "silent"
            if await self.state.miss(reason, self._info(), immediate=True):
                self.logic.reset_filters()

    def _emit(self, emits) -> None:
        for kind, payload, severity in emits:
            try:
                self.ctx.emit_new(kind, self.cfg.id, payload, severity=severity)
            except EventError as exc:
                self.emit_errors += 1
                self.ctx.log.error("bin event rejected", extra={"device": self.cfg.id, "kind": kind,
                                                               "error": str(exc)})

    def _info(self) -> dict[str, Any]:
        return {"port": self.cfg.serial.port, "bin": self.cfg.bin}

    def settled(self) -> bool:
        return self.sleeper.settled()

    def health(self) -> dict[str, Any]:
        return {"port": self.cfg.serial.port, "port_open": self.link.is_open,
                "state": self.state.state if self.state else "unknown", "evaluations": self.evaluations,
                "port_opens": self.link.opens, "port_losses": self.port_losses, "open_failures": self.open_failures,
                "backoff_s": self.backoff_s, "last_error": self.last_error, "bytes_in": self.link.bytes_in,
                **self.parser.stats.as_dict(), **self.logic.snapshot(), "emit_errors": self.emit_errors}
