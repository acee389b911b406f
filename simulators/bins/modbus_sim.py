"""A scriptable RS-485 bus of Modbus RTU ultrasonic level sensors: pymodbus's server on a pty.

Layout (all real file descriptors, no socat):

    driver --opens--> host PtyPort (symlink, unpluggable) <--relay--> device pty <--opens-- pymodbus server

* pymodbus's `ModbusSerialServer` (RTU, 9600 8N1 set explicitly: pymodbus defaults to 19200) serves one
  `SimDevice` per sensor address; its `action` hook writes each sensor's registers from its `BinScenario`
  at the moment of the read (DYP map by default: 0x0100 processed mm, 0x0101 real-time mm, 0x0102 0.1 C).
* Frame faults go in through pymodbus's `trace_packet` hook on outgoing replies (documented as the place to
  modify the data stream): bad CRC, truncation, noise before the frame, answer from a wrong address, drop.
  Replies for addresses that are not on the bus are dropped there too — on RS-485 an absent sensor is
  silent (pymodbus would otherwise answer with a device-failure exception).
* The relay is the cable: `silent` cuts the sensor->driver direction, `unplug()`/`plug()` yank the USB
  adapter, and it records what the driver sent (requests) and received (replies) for byte-exact checks.
"""
from __future__ import annotations

import asyncio
import dataclasses
from functools import partial
from pathlib import Path

from pymodbus import FramerType
from pymodbus.framer import FramerRTU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.config.devices import RegisterMap

from .faults import FaultPlan
from .pty_port import PtyPort
from .scenario import BinScenario


@dataclasses.dataclass
class SimSensor:
    unit: int
    scenario: BinScenario
    register_map: RegisterMap = dataclasses.field(default_factory=RegisterMap)
    present: bool = True  # False: the address is on nobody's sensor (silent)
    reads: int = 0

    def registers(self) -> dict[int, int]:
        rm = self.register_map
        echo = self.scenario.echo_mm()
        regs = {rm.distance_processed: echo & 0xFFFF}
        if rm.distance_realtime is not None:
            regs[rm.distance_realtime] = echo & 0xFFFF
        if rm.temperature is not None:
            regs[rm.temperature] = int(round(self.scenario.temperature_c() / rm.temperature_scale)) & 0xFFFF
        if rm.tilt is not None:
            regs[rm.tilt] = 0
        return regs


class ModbusLevelSimulator:
    def __init__(self, sensors: list[SimSensor], link_path: str | Path | None = None,
                 faults: FaultPlan | None = None, baudrate: int = 9600):
        self.sensors = {s.unit: s for s in sensors}
        self.faults = faults or FaultPlan()
        self.baudrate = baudrate
        self.host = PtyPort(link_path)
        self.device = PtyPort()
        self.server: ModbusSerialServer | None = None
        self.silent = False
        self.sniffed_requests = bytearray()
        self.sniffed_replies = bytearray()
        self.replies = 0
        self.dropped_silent = 0

    @property
    def path(self) -> str:
        """The port a driver opens (stable across unplug/replug when link_path was given)."""
        return self.host.path

    # ---- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> "ModbusLevelSimulator":
        self.device.plug()
        self.host.plug()
        self.device.on_data(self._to_host)
        self.host.on_data(self._to_device)
        devices = [SimDevice(id=s.unit, simdata=self._simdata(s.register_map), action=partial(self._action, s))
                   for s in self.sensors.values()]
        # id 0 = "every other address" in pymodbus; its replies are dropped in _trace_packet (an absent sensor
        # is silent), and without it pymodbus answers unknown addresses with a device-failure exception.
        devices.append(SimDevice(id=0, simdata=[SimData(address=0, values=0, datatype=DataType.REGISTERS)]))
        self.server = ModbusSerialServer(
            devices, framer=FramerType.RTU, port=self.device.slave_name, baudrate=self.baudrate, bytesize=8,
            parity="N", stopbits=1, ignore_missing_devices=True, trace_packet=self._trace_packet)
        await self.server.serve_forever(background=True)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
        self.host.close()
        self.device.close()

    async def __aenter__(self) -> "ModbusLevelSimulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ---- the cable -----------------------------------------------------------------------------------------
    def unplug(self) -> None:
        self.host.unplug()

    def plug(self) -> None:
        self.host.plug()

    def inject_noise(self, n: int = 16) -> bytes:
        """Random bytes on the line right now (not in reply to anything)."""
        junk = self.faults.noise(n)
        self.host.write(junk)
        return junk

    def _to_device(self, data: bytes) -> None:
        self.sniffed_requests += data
        del self.sniffed_requests[:-4096]
        self.device.write(data)

    def _to_host(self, data: bytes) -> None:
        if self.silent or not self.host.plugged:
            self.dropped_silent += 1
            return
        self.sniffed_replies += data
        del self.sniffed_replies[:-4096]
        self.host.write(data)

    # ---- pymodbus hooks -----------------------------------------------------------------------------------
    @staticmethod
    def _simdata(rm: RegisterMap) -> list[SimData]:
        addrs = {rm.distance_processed, rm.distance_realtime, rm.temperature, rm.tilt} - {None}
        return [SimData(address=a, values=0, datatype=DataType.REGISTERS) for a in sorted(addrs)]

    async def _action(self, sensor: SimSensor, function_code, start_address, address, count, registers,
                      set_values):
        # Called by pymodbus before it answers: put this instant's readings into the register block.
        sensor.reads += 1
        for reg, value in sensor.registers().items():
            i = reg - start_address
            if 0 <= i < len(registers):
                registers[i] = value
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        unit = data[0]
        sensor = self.sensors.get(unit)
        if sensor is None or not sensor.present:
            return b""
        fault = self.faults.pick(unit)
        self.replies += 1
        if fault is None:
            return data
        if fault == "crc":
            return self.faults.corrupt(data, first=3)
        if fault == "truncate":
            return self.faults.truncate(data)
        if fault == "noise":
            return self.faults.noise() + data
        if fault == "wrong_address":
            other = unit % 247 + 1
            frame = bytes([other]) + data[1:-2]
            return frame + FramerRTU.compute_CRC(frame).to_bytes(2, "big")
        return b""  # drop
