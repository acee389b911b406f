"""Device sections: access controllers, readers and bin-level sensors, discriminated by `type`."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .base import Id, Secret, Strict


class SerialPort(Strict):
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int = Field(default=9600, description="9600 8N1 is what these sensors use")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class UhppoteController(Strict):
    type: Literal["uhppote"]
    id: Id
    serial: int = Field(ge=1, le=0xFFFFFFFF, description="controller serial number (printed on the board)")
    address: str = Field(description="controller IP address")
    port: int = Field(default=60000, ge=1, le=65535)
    listen_port: int = Field(default=60001, ge=1, le=65535,
                             description="UDP port this gateway listens on for pushed events")
    doors: dict[int, str] = Field(default_factory=dict, description="door number -> name")
    sync_time: bool = True
    poll_interval_s: float = Field(default=30, gt=0, description="status poll; also detects offline")
    offline_after_missed: int = Field(default=3, ge=1)
    timeout_s: float = Field(default=1.0, gt=0)
    held_open_s: float = Field(default=60, gt=0)


class OsdpReader(Strict):
    type: Literal["osdp"]
    id: Id
    serial: SerialPort
    address: int = Field(default=0, ge=0, le=126, description="OSDP PD address")
    scbk: Secret | None = Field(default=None, description="secure channel base key (16 bytes hex)")
    door: int | None = None
    name: str = ""
    offline_after_s: float = Field(default=5, gt=0)


class WiegandSerial(Strict):
    type: Literal["wiegand_serial"]
    id: Id
    serial: SerialPort
    profile: Literal["ascii_hex", "ascii_bits", "binary"] = Field(
        default="ascii_hex", description="framing of the Wiegand-to-serial converter")
    format: Literal["auto", "wiegand26", "wiegand34"] = "auto"
    door: int | None = None


class RegisterMap(Strict):
    function: Literal[3, 4] = 3
    distance_processed: int = 0x0100
    distance_realtime: int = 0x0101
    temperature: int | None = 0x0102
    temperature_scale: float = 0.1
    tilt: int | None = None


class BinCalibration(Strict):
    bin: Id = Field(description="bin id (shown to property managers)")
    station: Id | None = None
    empty_mm: int = Field(gt=0, description="distance reading when the bin is empty")
    full_mm: int = Field(gt=0, description="distance reading when the bin is full")
    full_raise_pct: float = Field(default=90, ge=0, le=100)
    full_clear_pct: float = Field(default=70, ge=0, le=100)
    report_change_pct: float = Field(default=5, gt=0)
    report_every_s: float = Field(default=600, gt=0)
    temperature_alarm_c: float = Field(default=60)
    temperature_rise_c_per_min: float = Field(default=5, gt=0)
    median_window: int = Field(default=5, ge=1, le=31)

    @model_validator(mode="after")
    def _check(self) -> "BinCalibration":
        if self.full_mm >= self.empty_mm:
            raise ValueError("full_mm must be smaller than empty_mm (the sensor looks down into the bin)")
        if self.full_clear_pct >= self.full_raise_pct:
            raise ValueError("full_clear_pct must be below full_raise_pct (hysteresis)")
        return self


class ModbusSensor(BinCalibration):
    unit: int = Field(ge=1, le=247, description="Modbus slave address")
    register_map: RegisterMap = Field(default_factory=RegisterMap)


class ModbusLevelBus(Strict):
    type: Literal["modbus_level"]
    id: Id
    serial: SerialPort
    sensors: list[ModbusSensor] = Field(min_length=1)
    poll_interval_s: float = Field(default=10, gt=0)
    timeout_s: float = Field(default=0.5, gt=0)
    offline_after_missed: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _unique_units(self) -> "ModbusLevelBus":
        units = [s.unit for s in self.sensors]
        dup = {u for u in units if units.count(u) > 1}
        if dup:
            raise ValueError(f"two sensors share Modbus unit {sorted(dup)[0]} on one bus")
        return self


class UartLevelSensor(BinCalibration):
    type: Literal["uart_level"]
    id: Id
    serial: SerialPort
    offline_after_s: float = Field(default=5, gt=0)


DeviceConfig = Annotated[
    Union[UhppoteController, OsdpReader, WiegandSerial, ModbusLevelBus, UartLevelSensor],
    Field(discriminator="type"),
]
