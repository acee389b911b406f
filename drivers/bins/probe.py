"""Installer checks for bin-level sensors: "is sensor 3 on /dev/ttyUSB0 responding, and what does it read?"

Used by `edge probe modbus|uart|bins|serial-ports` and by `edge doctor` through `probe_device()`. Every
answer carries a one-line `summary` and, when something is wrong, a `fix` that names the likely cause
(wiring, address, baud rate, register map, permissions, a running gateway holding the port).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat
import statistics
from typing import Any

from edge.config.devices import BinCalibration, ModbusLevelBus, RegisterMap, SerialPort, UartLevelSensor

from .level import fill_pct
from .modbus_rtu import EXCEPTION_NAMES, to_signed16
from .rtu_master import RtuMaster
from .serial_link import PortLost, SerialLink
from .uart_frame import UartFrameParser

OPEN_FIX = ("check that the adapter is plugged in and the path is right (ls -l /dev/serial/by-id/); the user "
            "needs the dialout group; a running gateway holds the port exclusively (stop it first)")


def _result(ok: bool, summary: str, fix: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"ok": ok, "summary": summary, "fix": fix, "detail": detail}


# ---- Modbus ---------------------------------------------------------------------------------------------------
async def probe_modbus_async(serial_cfg: SerialPort, units: list[int], register_map: RegisterMap | None = None,
                             timeout_s: float = 0.5,
                             calibrations: dict[int, BinCalibration] | None = None) -> dict[str, Any]:
    rm = register_map or RegisterMap()
    link = SerialLink(serial_cfg)
    port = serial_cfg.port
    detail: dict[str, Any] = {"port": port, "baudrate": serial_cfg.baudrate,
                              "framing": f"{serial_cfg.bytesize}{serial_cfg.parity}{serial_cfg.stopbits}",
                              "function": rm.function, "units": {}}
    try:
        link.open()
    except PortLost as exc:
        return _result(False, str(exc), OPEN_FIX, detail)
    master = RtuMaster(link, timeout_s)
    try:
        for unit in units:
            detail["units"][unit] = await _probe_unit(master, unit, rm, (calibrations or {}).get(unit))
    except PortLost as exc:
        return _result(False, f"{port}: lost the port while probing ({exc})", OPEN_FIX, detail)
    finally:
        link.close()
    detail["stray_bytes"] = master.stray_bytes
    return _judge_modbus(port, detail)


async def _probe_unit(master: RtuMaster, unit: int, rm: RegisterMap, cal: BinCalibration | None) -> dict[str, Any]:
    out: dict[str, Any] = {"answers": False, "reads": {}}
    regs = [("distance_processed", rm.distance_processed), ("distance_realtime", rm.distance_realtime),
            ("temperature", rm.temperature), ("tilt", rm.tilt)]
    for name, address in regs:
        if address is None:
            continue
        v = await master.read_registers(unit, rm.function, address, 1)
        read: dict[str, Any] = {"register": f"0x{address:04X}", "status": v.status}
        if v.status == "ok":
            raw = v.registers[0]
            read["raw"] = raw
            if name == "temperature":
                read["value"] = round(to_signed16(raw) * rm.temperature_scale, 1)
            elif name == "tilt":
                read["value"] = round(to_signed16(raw) * rm.tilt_scale, 1)
            else:
                read["value"] = raw
        elif v.status == "exception":
            read["exception"] = EXCEPTION_NAMES.get(v.exception_code, str(v.exception_code))
        elif v.status == "wrong_address":
            read["from_unit"] = v.from_unit
        out["reads"][name] = read
        if v.status in ("ok", "exception"):
            out["answers"] = True
        elif name == "distance_processed" and v.status == "no_response":
            break  # silent: do not spend another timeout per register
    d = out["reads"].get("distance_processed" if rm.distance_source == "processed" else "distance_realtime", {})
    if d.get("status") == "ok":
        out["distance_mm"] = d["value"]
        out["no_echo"] = d["value"] in (0, 0xFFFF)
        if cal is not None and not out["no_echo"]:
            out["fill_pct"] = fill_pct(cal, d["value"])
    t = out["reads"].get("temperature", {})
    if t.get("status") == "ok":
        out["temperature_c"] = t["value"]
    return out


def _describe_unit(unit: int, u: dict[str, Any]) -> str:
    if not u["answers"]:
        statuses = sorted({r["status"] for r in u["reads"].values()})
        return f"unit {unit}: no valid answer ({', '.join(statuses)})"
    parts = []
    if "distance_mm" in u:
        parts.append("no echo" if u["no_echo"] else f"distance {u['distance_mm']} mm")
        if "fill_pct" in u:
            parts.append(f"{u['fill_pct']} % full")
    if "temperature_c" in u:
        parts.append(f"temperature {u['temperature_c']} C")
    refused = [r["register"] for r in u["reads"].values() if r["status"] == "exception"]
    if refused:
        parts.append("refuses " + ", ".join(refused))
    return f"unit {unit}: answers, " + ", ".join(parts)


def _judge_modbus(port: str, detail: dict[str, Any]) -> dict[str, Any]:
    units = detail["units"]
    answering = [u for u, d in units.items() if d["answers"]]
    lines = [_describe_unit(u, d) for u, d in units.items()]
    fixes: list[str] = []
    for unit, d in units.items():
        statuses = {r["status"] for r in d["reads"].values()}
        if not d["answers"]:
            if "wrong_address" in statuses:
                other = next(r["from_unit"] for r in d["reads"].values() if r["status"] == "wrong_address")
                fixes.append(f"a sensor answered as address {other} when asked for {unit}: fix `unit:` in edge.yaml "
                             f"or re-address the sensor")
            elif statuses & {"crc_error", "truncated", "garbage"}:
                fixes.append(f"unit {unit}'s replies arrive garbled: make sure the sensor runs 9600 8N1 like the "
                             f"port, terminate the bus ends with 120 ohm, check shield and ground")
            elif not answering:
                fixes.append(f"nothing answers on {port}: check sensor power, swap A/B if unsure, confirm the "
                             f"sensor address and that it is set to 9600 8N1")
            else:
                fixes.append(f"unit {unit} is silent while others answer: check its address (vendor tool / DIP), "
                             f"its power and its A/B connection")
        else:
            if d.get("no_echo"):
                fixes.append(f"unit {unit} answers but sees no echo: check mounting and aim, lid, condensation")
            if any(r["status"] == "exception" for r in d["reads"].values()):
                fixes.append(f"unit {unit} refuses a register: wrong register map for this model "
                             f"(try register_map: dyp-input or a custom map)")
    # fine = every sensor answers with a usable distance (not only "alive but refusing the register")
    ok = all(d["answers"] and "distance_mm" in d and not d.get("no_echo") for d in units.values())
    head = f"{port}: {len(answering)}/{len(units)} sensor(s) answer"
    return _result(ok, head + "; " + "; ".join(lines), " / ".join(fixes), detail)


# ---- UART -----------------------------------------------------------------------------------------------------
async def probe_uart_async(serial_cfg: SerialPort, seconds: float = 2.0,
                           calibration: BinCalibration | None = None) -> dict[str, Any]:
    link = SerialLink(serial_cfg)
    port = serial_cfg.port
    detail: dict[str, Any] = {"port": port, "baudrate": serial_cfg.baudrate, "listened_s": seconds}
    try:
        link.open()
    except PortLost as exc:
        return _result(False, str(exc), OPEN_FIX, detail)
    parser = UartFrameParser()
    values: list[int | None] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while (remaining := deadline - loop.time()) > 0:
            await link.wait_data(remaining)
            values += parser.feed(link.take())
    except PortLost as exc:
        detail.update(parser.stats.as_dict())
        return _result(False, f"{port}: lost the port while listening ({exc})", OPEN_FIX, detail)
    finally:
        link.close()
    stats = parser.stats.as_dict()
    detail.update(stats, bytes=link.bytes_in)
    echoes = [v for v in values if v is not None]
    if echoes:
        detail["distance_mm"] = int(statistics.median_low(echoes))
        if calibration is not None:
            detail["fill_pct"] = fill_pct(calibration, detail["distance_mm"])
    if not link.bytes_in:
        return _result(False, f"{port}: silent for {seconds:g} s",
                       "check sensor power (3.3-5 V), that its TX goes to the adapter's RX, and that the sensor is "
                       "in UART auto-output mode", detail)
    if not stats["frames"]:
        return _result(False, f"{port}: {link.bytes_in} bytes but no valid FF H L SUM frame",
                       "wrong baud rate or a different protocol: these sensors send 9600 8N1; a Modbus model needs "
                       "`edge probe modbus`", detail)
    bad = stats["checksum_errors"] / max(1, stats["frames"] + stats["checksum_errors"])
    reading = (f"distance {detail['distance_mm']} mm" if echoes else "no echo") + (
        f", {detail['fill_pct']} % full" if "fill_pct" in detail else "")
    summary = f"{port}: {stats['frames']} frames in {seconds:g} s, {reading}"
    if not echoes:
        return _result(False, summary, "the sensor answers but sees no echo: check mounting and aim, lid, "
                                       "condensation", detail)
    if bad > 0.1:
        return _result(False, summary + f", {bad:.0%} bad checksums",
                       "noisy line: shorten or shield the cable, check ground and supply voltage", detail)
    return _result(True, summary, "", detail)


# ---- doctor entry point -------------------------------------------------------------------------------------
def probe_device(device_cfg, timeout_s: float = 2.0) -> dict[str, Any]:
    """Probe one configured bin device (`modbus_level` bus or `uart_level` sensor) once.

    Safe to call from synchronous code and from inside a running event loop (it then runs in a worker
    thread). A Modbus bus costs at most about `timeout_s` per silent sensor; a UART sensor is listened to for
    `timeout_s`.
    """
    coro_factory = _probe_factory(device_cfg, timeout_s)
    if coro_factory is None:
        return _result(False, f"{getattr(device_cfg, 'id', device_cfg)!s}: not a bin-level device", "", {})
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bins-probe") as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def _probe_factory(device_cfg, timeout_s: float):
    if isinstance(device_cfg, ModbusLevelBus):
        per_reply = min(timeout_s, max(device_cfg.timeout_s, 0.2))
        units = [s.unit for s in device_cfg.sensors]
        maps = {s.register_map.model_dump_json() for s in device_cfg.sensors}

        async def modbus() -> dict[str, Any]:
            if len(maps) == 1:
                res = await probe_modbus_async(device_cfg.serial, units, device_cfg.sensors[0].register_map,
                                               per_reply, {s.unit: s for s in device_cfg.sensors})
            else:  # sensors of different models on one bus: probe each with its own map
                parts = [await probe_modbus_async(device_cfg.serial, [s.unit], s.register_map, per_reply,
                                                  {s.unit: s}) for s in device_cfg.sensors]
                units_detail = {u: d for p in parts for u, d in p["detail"].get("units", {}).items()}
                res = _judge_modbus(device_cfg.serial.port, parts[0]["detail"] | {"units": units_detail}) \
                    if units_detail else parts[0]
            res["summary"] = f"{device_cfg.id}: {res['summary']}"
            res["detail"]["device"] = device_cfg.id
            return res
        return modbus
    if isinstance(device_cfg, UartLevelSensor):
        async def uart() -> dict[str, Any]:
            res = await probe_uart_async(device_cfg.serial, timeout_s, device_cfg)
            res["summary"] = f"{device_cfg.id}: {res['summary']}"
            res["detail"]["device"] = device_cfg.id
            return res
        return uart
    return None


# ---- serial ports ---------------------------------------------------------------------------------------------
def list_serial_ports(extra: list[str] | None = None) -> list[dict[str, Any]]:
    """Serial ports pyserial finds (with /dev/serial/by-id links), plus any paths given (ptys, odd drivers)."""
    from serial.tools import list_ports

    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for p in sorted(list_ports.comports(include_links=True), key=lambda p: p.device):
        seen.add(p.device)
        out.append({"device": p.device, "realpath": os.path.realpath(p.device), "description": p.description,
                    "hwid": p.hwid, "vid": f"{p.vid:04x}" if p.vid is not None else None,
                    "pid": f"{p.pid:04x}" if p.pid is not None else None, "serial_number": p.serial_number,
                    "manufacturer": p.manufacturer, "product": p.product, "source": "list_ports"})
    for path in extra or []:
        if path in seen:
            continue
        seen.add(path)
        out.append(_describe_path(path))
    return out


def _describe_path(path: str) -> dict[str, Any]:
    d: dict[str, Any] = {"device": path, "realpath": os.path.realpath(path), "source": "argument"}
    try:
        st = os.stat(path)
    except OSError as exc:
        d.update(exists=False, description=f"not found ({exc.strerror})")
        return d
    d["exists"] = True
    if not stat.S_ISCHR(st.st_mode):
        d["description"] = "not a character device"
        return d
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        d["description"] = f"cannot open ({exc.strerror})"
        return d
    try:
        d["description"] = "tty (pty)" if "/pts/" in d["realpath"] else ("tty" if os.isatty(fd) else "not a tty")
    finally:
        os.close(fd)
    return d
