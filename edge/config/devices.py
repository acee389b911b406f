"""Device sections: access controllers, readers and bin-level sensors, discriminated by `type`."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

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
    retries: int = Field(default=2, ge=0, le=5, description="re-sends of a request that got no reply")
    listen_host: str = Field(default="0.0.0.0", description="local address the event listener binds to")
    listener_address: str | None = Field(
        default=None, pattern=r"^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$",
        description="this gateway's IP[:port] as the controller sees it; when set, the controller is told "
                    "to push events there (set-listener) on every (re)connection")
    accept_any_source: bool = Field(default=False, description="accept pushed events from any IP (NAT in between)")
    record_special_events: bool = Field(default=True, description="ask the controller to log door open/close/button")
    time_sync_tolerance_s: float = Field(default=2, gt=0, description="set the controller clock beyond this drift")
    time_sync_every_s: float = Field(default=3600, gt=0)
    backfill_max: int = Field(default=10_000, ge=1, description="most records fetched to close one gap")
    backfill_on_first_start: int = Field(default=0, ge=0, description="history imported the first time a "
                                         "controller is seen and it has no downloaded-index register set")


class OsdpReader(Strict):
    type: Literal["osdp"]
    id: Id
    serial: SerialPort
    address: int = Field(default=0, ge=0, le=126, description="OSDP PD address")
    scbk: Secret | None = Field(default=None, description="secure channel base key (16 bytes hex)")
    door: int | None = None
    name: str = ""
    offline_after_s: float = Field(default=5, ge=1.5, description="no valid reply this long = offline; must "
                                   "exceed libosdp's ~1 s re-probe after one lost reply")
    allow: list[str] | None = Field(default=None, description="credentials (facility:card) the gateway grants; "
                                    "without a list card reads are only reported (reader.card)")
    keypad: Literal["masked", "clear"] = Field(default="masked", description="PINs are secrets: digits are "
                                               "masked in reader.keypad events unless set to clear")
    keypad_timeout_s: float = Field(default=3, gt=0, description="a key entry without # ends after this pause")
    reconnect_max_s: float = Field(default=30, gt=0, description="reopen backoff cap after a USB-serial unplug")


class WiegandSerial(Strict):
    type: Literal["wiegand_serial"]
    id: Id
    serial: SerialPort
    profile: Literal["ascii_hex", "ascii_bits", "binary"] = Field(
        default="ascii_hex", description="framing of the Wiegand-to-serial converter")
    format: Literal["auto", "wiegand26", "wiegand34"] = "auto"
    door: int | None = None
    name: str = ""
    allow: list[str] | None = Field(default=None, description="credentials (facility:card) the gateway grants; "
                                    "without a list card reads are only reported (reader.card)")
    reconnect_max_s: float = Field(default=30, gt=0, description="reopen backoff cap after a USB-serial unplug")


class RegisterMap(Strict):
    """Where a sensor model keeps its values. The default is the DYP ultrasonic map (function 03)."""

    function: Literal[3, 4] = Field(default=3, description="3 = holding registers, 4 = input registers")
    distance_processed: int = Field(default=0x0100, ge=0, le=0xFFFF, description="filtered distance, mm")
    distance_realtime: int | None = Field(default=0x0101, ge=0, le=0xFFFF, description="last raw echo, mm")
    distance_source: Literal["processed", "realtime"] = Field(
        default="processed", description="which distance register the fill level is computed from")
    temperature: int | None = Field(default=0x0102, ge=0, le=0xFFFF, description="temperature register")
    temperature_scale: float = Field(default=0.1, description="degrees C per count (signed 16-bit)")
    tilt: int | None = Field(default=None, ge=0, le=0xFFFF, description="tilt register, if the model has one")
    tilt_scale: float = Field(default=1.0, description="degrees per count")

    @model_validator(mode="after")
    def _check_source(self) -> "RegisterMap":
        if self.distance_source == "realtime" and self.distance_realtime is None:
            raise ValueError("distance_source is realtime but distance_realtime is not set")
        return self


#: Named register maps (`register_map: dyp` in edge.yaml, `--map dyp` for `edge probe modbus`).
REGISTER_MAP_PRESETS: dict[str, dict] = {
    "dyp": {},  # DYP-A01/A02/A08 RS485: 0x0100 processed mm, 0x0101 real-time mm, 0x0102 temperature x0.1 C
    "dyp-realtime": {"distance_source": "realtime"},
    "dyp-input": {"function": 4},  # firmware variants that expose the same map as input registers
}


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
    temperature_rate_window_s: float = Field(default=120, gt=0,
                                             description="rate of rise is the slope over this much history")
    temperature_clear_margin_c: float = Field(default=5, ge=0,
                                              description="alarm clears this far below temperature_alarm_c")
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
    register_map: RegisterMap = Field(default_factory=RegisterMap,
                                      description="a preset name (dyp, dyp-realtime, dyp-input) or a custom map")

    @field_validator("register_map", mode="before")
    @classmethod
    def _preset(cls, v):
        if isinstance(v, str):
            if v not in REGISTER_MAP_PRESETS:
                raise ValueError(f"unknown register map {v!r}; presets: {', '.join(sorted(REGISTER_MAP_PRESETS))}")
            return dict(REGISTER_MAP_PRESETS[v])
        return v


class ModbusLevelBus(Strict):
    type: Literal["modbus_level"]
    id: Id
    serial: SerialPort
    sensors: list[ModbusSensor] = Field(min_length=1)
    poll_interval_s: float = Field(default=10, gt=0)
    timeout_s: float = Field(default=0.5, gt=0)
    offline_after_missed: int = Field(default=3, ge=1)
    retries: int = Field(default=1, ge=0, le=3, description="re-asks after a corrupted reply (not after silence)")
    reconnect_max_s: float = Field(default=30, gt=0, description="reopen backoff cap after a USB-serial unplug")

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
    evaluate_every_s: float = Field(default=1.0, gt=0, description="how often streamed echoes are evaluated")
    reconnect_max_s: float = Field(default=30, gt=0, description="reopen backoff cap after a USB-serial unplug")


DeviceConfig = Annotated[
    Union[UhppoteController, OsdpReader, WiegandSerial, ModbusLevelBus, UartLevelSensor],
    Field(discriminator="type"),
]
