"""Driver for a Modbus RTU bus of ultrasonic bin-level sensors (one component per bus, sensors by address).

Each poll cycle asks every sensor for its distance (and temperature / tilt if its register map has them),
feeds the readings to the bin logic (fill %, bin.level, bin.full, bin.temperature) and keeps each sensor's
online state: offline after `offline_after_missed` polls without a valid answer, online on the next one.
Corrupted replies (bad CRC, truncated, wrong address, noise) are counted per sensor and re-asked up to
`retries` times; they never end the component. An unplugged adapter closes the port; it is reopened with
exponential backoff (ctx.clock) and the bus itself goes device.offline / device.online.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from edge.config.devices import ModbusLevelBus, ModbusSensor
from edge.events import EventError
from edge.runtime.component import Component

from .level import BinLevelLogic
from .link_state import LinkState
from .modbus_rtu import CORRUPTED, EXCEPTION_NAMES, ReplyVerdict, to_signed16
from .rtu_master import RtuMaster
from .serial_link import PortLost, SerialLink
from .timing import ClockSleeper

BACKOFF_MIN_S = 1.0
#: raw distance values that mean "no echo" on DYP-style sensors
NO_ECHO_VALUES = (0, 0xFFFF)


def sensor_device_id(bus_id: str, unit: int) -> str:
    """"bins-bus-a.3" = the sensor with Modbus address 3 on bus bins-bus-a."""
    return f"{bus_id}.{unit}"


@dataclasses.dataclass
class SensorCounters:
    polls: int = 0
    ok: int = 0
    no_response: int = 0
    crc_error: int = 0
    truncated: int = 0
    wrong_address: int = 0
    garbage: int = 0
    exception: int = 0
    noise_bytes: int = 0
    no_echo: int = 0
    retries: int = 0
    missed_total: int = 0


class _Sensor:
    def __init__(self, ctx, bus: ModbusLevelBus, cfg: ModbusSensor):
        self.cfg = cfg
        self.device = sensor_device_id(bus.id, cfg.unit)
        self.logic = BinLevelLogic(cfg, self.device)
        self.state = LinkState(ctx, self.device, "modbus_level_sensor", bus.offline_after_missed)
        self.counters = SensorCounters()
        self.last_error: str | None = None
        self.last_exception: int | None = None


class ModbusLevelBusDriver(Component):
    def __init__(self, cfg: ModbusLevelBus):
        self.cfg = cfg
        self.name = f"bins.modbus.{cfg.id}"
        self.link = SerialLink(cfg.serial)
        self.master = RtuMaster(self.link, cfg.timeout_s)
        self.sleeper = ClockSleeper()
        self.ctx = None
        self._sensors: list[_Sensor] = []
        self.bus_state: LinkState | None = None
        self.cycles = 0
        self.port_losses = 0
        self._losses_handled = 0
        self.open_failures = 0
        self.emit_errors = 0
        self.backoff_s = BACKOFF_MIN_S
        self.last_error: str | None = None

    # ---- component ---------------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        self.ctx = ctx
        self.sleeper.clock = ctx.clock
        if not self._sensors:
            self._sensors = [_Sensor(ctx, self.cfg, s) for s in self.cfg.sensors]
            self.bus_state = LinkState(ctx, self.cfg.id, "modbus_bus", 1)
        try:
            while True:
                started = ctx.clock.monotonic()
                if self.link.losses > self._losses_handled:  # unplugged while we were waiting
                    await self._port_lost(self.link.lost_reason or "port closed")
                if not self.link.is_open and not await self._open():
                    await self.sleeper.sleep(self.backoff_s)
                    self.backoff_s = min(self.backoff_s * 2, self.cfg.reconnect_max_s)
                    continue
                try:
                    for sensor in self._sensors:
                        await self._poll(sensor)
                except PortLost as exc:
                    await self._port_lost(str(exc))
                self.cycles += 1
                elapsed = ctx.clock.monotonic() - started
                await self.sleeper.sleep(max(0.0, self.cfg.poll_interval_s - elapsed))
        finally:
            self.link.close()

    async def _open(self) -> bool:
        try:
            self.link.open()
        except PortLost as exc:
            self.open_failures += 1
            if self.bus_state.state != "offline":
                self.ctx.log.warning("cannot open the modbus bus port; retrying with backoff",
                                     extra={"bus": self.cfg.id, "port": self.cfg.serial.port, "error": str(exc)})
            self.last_error = str(exc)
            await self.bus_state.miss(str(exc), {"port": self.cfg.serial.port}, immediate=True)
            for s in self._sensors:  # sensors behind a missing adapter miss their polls too
                s.counters.missed_total += 1
                if await s.state.miss("serial port unavailable"):
                    s.logic.reset_filters()
            return False
        self.backoff_s = BACKOFF_MIN_S
        await self.bus_state.seen({"port": self.cfg.serial.port, "baudrate": self.cfg.serial.baudrate})
        return True

    async def _port_lost(self, reason: str) -> None:
        self._losses_handled = self.link.losses
        self.port_losses += 1
        self.last_error = reason
        self.link.close()
        self.ctx.log.warning("modbus bus lost its serial port; will reopen with backoff",
                             extra={"bus": self.cfg.id, "port": self.cfg.serial.port, "reason": reason})
        await self.bus_state.miss(reason, {"port": self.cfg.serial.port}, immediate=True)

    # ---- one sensor ---------------------------------------------------------------------------------------
    async def _read(self, sensor: _Sensor, address: int) -> ReplyVerdict:
        fn = sensor.cfg.register_map.function
        c = sensor.counters
        verdict = await self.master.read_registers(sensor.cfg.unit, fn, address, 1)
        for _ in range(self.cfg.retries):
            if verdict.status not in CORRUPTED:
                break
            self._count(sensor, verdict)
            c.retries += 1
            verdict = await self.master.read_registers(sensor.cfg.unit, fn, address, 1)
        self._count(sensor, verdict)
        return verdict

    def _count(self, sensor: _Sensor, v: ReplyVerdict) -> None:
        c = sensor.counters
        setattr(c, v.status, getattr(c, v.status) + 1)
        c.noise_bytes += v.noise_bytes
        if v.status == "exception":
            sensor.last_exception = v.exception_code
        elif v.status == "wrong_address":
            sensor.last_error = f"answer came from address {v.from_unit}"
        elif v.status != "ok":
            sensor.last_error = v.status

    async def _poll(self, sensor: _Sensor) -> None:
        rm = sensor.cfg.register_map
        c = sensor.counters
        c.polls += 1
        addr = rm.distance_processed if rm.distance_source == "processed" else rm.distance_realtime
        v = await self._read(sensor, addr)
        if v.status == "exception":
            # It answers, so it is online, but the register map does not fit this model: say so once.
            await sensor.state.seen(self._info(sensor))
            if c.exception == 1 or c.exception % 100 == 0:
                self.ctx.log.warning("sensor refused the distance register; check register_map / model",
                                     extra={"device": sensor.device, "register": hex(addr), "refusals": c.exception,
                                            "exception": EXCEPTION_NAMES.get(v.exception_code, v.exception_code)})
            return
        if v.status != "ok":
            c.missed_total += 1
            if await sensor.state.miss(v.status, self._info(sensor)):
                sensor.logic.reset_filters()
            return
        raw = v.registers[0]
        temperature = tilt = None
        if rm.temperature is not None:
            tv = await self._read(sensor, rm.temperature)
            if tv.status == "ok":
                temperature = round(to_signed16(tv.registers[0]) * rm.temperature_scale, 2)
        if rm.tilt is not None:
            tv = await self._read(sensor, rm.tilt)
            if tv.status == "ok":
                tilt = to_signed16(tv.registers[0]) * rm.tilt_scale
        await sensor.state.seen(self._info(sensor))
        distances = [] if raw in NO_ECHO_VALUES else [raw]
        if not distances:
            c.no_echo += 1
        self._emit(sensor, sensor.logic.update(self.ctx.clock.monotonic(), distances, temperature, tilt))

    def _emit(self, sensor: _Sensor, emits) -> None:
        for kind, payload, severity in emits:
            try:
                self.ctx.emit_new(kind, sensor.device, payload, severity=severity)
            except EventError as exc:  # a payload bug must cost one event, not the bus
                self.emit_errors += 1
                self.ctx.log.error("bin event rejected", extra={"device": sensor.device, "kind": kind,
                                                               "error": str(exc)})

    def _info(self, sensor: _Sensor) -> dict[str, Any]:
        return {"bus": self.cfg.id, "port": self.cfg.serial.port, "unit": sensor.cfg.unit, "bin": sensor.cfg.bin}

    # ---- introspection ---------------------------------------------------------------------------------------
    def settled(self) -> bool:
        """True while the driver waits on ctx.clock for a deadline that is still in the future (tests)."""
        return self.sleeper.settled()

    def health(self) -> dict[str, Any]:
        sensors = {}
        for s in self._sensors:
            sensors[s.device] = {"unit": s.cfg.unit, "bin": s.cfg.bin, **s.state.health(),
                                 **dataclasses.asdict(s.counters), **s.logic.snapshot(),
                                 "last_error": s.last_error, "last_exception": s.last_exception}
        return {"port": self.cfg.serial.port, "port_open": self.link.is_open, "cycles": self.cycles,
                "bus_state": self.bus_state.state if self.bus_state else "unknown",
                "port_opens": self.link.opens, "port_losses": self.port_losses, "open_failures": self.open_failures,
                "backoff_s": self.backoff_s, "last_error": self.last_error, "stray_bytes": self.master.stray_bytes,
                "transactions": self.master.transactions, "emit_errors": self.emit_errors, "sensors": sensors}
