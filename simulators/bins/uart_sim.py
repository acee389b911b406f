"""A streaming UART ultrasonic sensor (DFRobot A02YYUW / DYP UART auto mode) on a pty.

Sends `FF H L SUM` frames every `period_s` of real time (the sensor free-runs at ~100 ms), each from its
`BinScenario` at that instant (with the scenario's jitter and ghost echoes). Faults: per-frame checksum
errors, truncated frames and noise bursts from a `FaultPlan`, `silent` (the sensor stops talking while the
port stays), and `unplug()` / `plug()` of the USB adapter.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.bins.uart_frame import encode_frame

from .faults import FaultPlan
from .pty_port import PtyPort
from .scenario import BinScenario


class UartLevelSimulator:
    def __init__(self, scenario: BinScenario, link_path: str | Path | None = None, period_s: float = 0.1,
                 faults: FaultPlan | None = None):
        self.scenario = scenario
        self.period_s = period_s
        self.faults = faults or FaultPlan()
        self.port = PtyPort(link_path)
        self.silent = False
        self.frames_sent = 0
        self.bytes_sent = 0
        self._task: asyncio.Task | None = None

    @property
    def path(self) -> str:
        return self.port.path

    async def start(self) -> "UartLevelSimulator":
        self.port.plug()
        self._task = asyncio.create_task(self._stream(), name="uart-level-sim")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.port.close()

    async def __aenter__(self) -> "UartLevelSimulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def unplug(self) -> None:
        self.port.unplug()

    def plug(self) -> None:
        self.port.plug()

    def send_raw(self, data: bytes) -> int:
        """Put arbitrary bytes on the line now (garbage, hand-made frames)."""
        n = self.port.write(data)
        self.bytes_sent += n
        return n

    def frame(self) -> bytes:
        """The next frame as it goes on the wire, faults applied."""
        frame = encode_frame(self.scenario.echo_mm())
        fault = self.faults.pick()
        if fault == "crc":
            return self.faults.corrupt(frame)
        if fault == "truncate":
            return self.faults.truncate(frame)
        if fault == "noise":
            return self.faults.noise() + frame
        if fault in ("drop", "wrong_address"):  # a UART sensor has no address: treat as a lost frame
            return b""
        return frame

    async def _stream(self) -> None:
        while True:
            if not self.silent and self.port.plugged:
                data = self.frame()
                if data:
                    self.bytes_sent += self.port.write(data)
                    self.frames_sent += 1
            await asyncio.sleep(self.period_s)
