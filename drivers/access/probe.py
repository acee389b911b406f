"""Installer checks for access devices: "does controller 405419896 answer, and what does it say",
"is there an OSDP reader at address 1 on /dev/ttyUSB1". Used by `edge probe ...` and `edge doctor`.

probe_device(device_cfg, timeout_s) -> {"ok": bool, "summary": str, "fix": str, "detail": dict}; never raises.
Synchronous on purpose (doctor and the CLI are synchronous); it opens its own sockets and ports, so run it
while the gateway is stopped (a serial port held by the running gateway is reported as such).
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

UHPPOTE_FIX = ("check the controller's power and network cable; that it is on the gateway's subnet (or has a "
               "gateway IP set); its IP address (find it with `edge probe uhppote --discover`) and serial number "
               "(printed on the board); and that UDP port {port} is not blocked")
SERIAL_OPEN_FIX = ("check the USB-serial adapter is plugged in (`ls -l /dev/serial/by-id/`), that the gateway user "
                   "is in the dialout group, and that no other program (or the running gateway) holds the port")
OSDP_FIX = ("check RS-485 A/B polarity and 120 ohm termination, the reader's OSDP address and baud rate (many "
            "readers ship at address 0, 9600 baud), and the secure channel key if the reader is in secure mode")


def _result(ok: bool, summary: str, fix: str = "", **detail: Any) -> dict[str, Any]:
    return {"ok": ok, "summary": summary, "fix": "" if ok else fix, "detail": detail}


def probe_device(device_cfg, timeout_s: float = 2.0, timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    """`timezone` is the gateway's (controllers keep local time); doctor can pass config.gateway.timezone."""
    try:
        kind = getattr(device_cfg, "type", None)
        if kind == "uhppote":
            return probe_uhppote(device_cfg, timeout_s, timezone)
        if kind == "osdp":
            return probe_osdp(device_cfg, timeout_s)
        if kind == "wiegand_serial":
            return probe_wiegand(device_cfg, timeout_s)
        return _result(False, f"not an access device (type {kind!r})", "probe it with its own family's probe")
    except Exception as exc:  # a probe must report, never crash doctor
        return _result(False, f"probe failed: {type(exc).__name__}: {exc}", "report this as a bug",
                       device=getattr(device_cfg, "id", None))


# ---- UHPPOTE --------------------------------------------------------------------------------------------
def probe_uhppote(cfg, timeout_s: float = 2.0, timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from uhppoted.uhppote import Uhppote

    u = Uhppote(bind="0.0.0.0", broadcast="255.255.255.255:60000", listen="0.0.0.0:60001")
    target = (int(cfg.serial), f"{cfg.address}:{cfg.port}", "udp")
    where = f"controller {cfg.serial} at {cfg.address}:{cfg.port}"
    fix = UHPPOTE_FIX.format(port=cfg.port)
    t0 = time.monotonic()
    try:
        status = u.get_status(target, timeout=timeout_s)
    except TimeoutError:
        return _result(False, f"{where} does not answer (waited {timeout_s:g} s)", fix, device=cfg.id)
    except (ValueError, OSError) as exc:
        return _result(False, f"{where}: {exc}", fix, device=cfg.id)
    rtt_ms = round((time.monotonic() - t0) * 1000, 1)
    if status.controller != int(cfg.serial):
        return _result(False, f"{cfg.address}:{cfg.port} answered as controller {status.controller}, "
                              f"edge.yaml says {cfg.serial}", "fix the serial number in edge.yaml",
                       device=cfg.id, answered_serial=status.controller)
    detail: dict[str, Any] = {
        "device": cfg.id, "serial": status.controller, "rtt_ms": rtt_ms, "event_index": status.event_index,
        "doors_open": [i + 1 for i, v in enumerate((status.door_1_open, status.door_2_open, status.door_3_open,
                                                    status.door_4_open)) if v],
        "system_error": status.system_error}
    try:
        t = u.get_time(target, timeout=timeout_s)
        if t.datetime is not None:
            detail["controller_time"] = t.datetime.isoformat(sep=" ")
            now = dt.datetime.now(ZoneInfo(timezone)).replace(tzinfo=None)
            detail["drift_s"] = round((t.datetime - now).total_seconds(), 1)
    except (TimeoutError, ValueError, OSError) as exc:
        detail["time_error"] = str(exc)
    try:
        listener = u.get_listener(target, timeout=timeout_s)
        detail["pushes_events_to"] = f"{listener.address}:{listener.port}"
    except (TimeoutError, ValueError, OSError):
        pass
    drift = detail.get("drift_s")
    summary = f"{where} answers in {rtt_ms} ms; last event index {status.event_index}"
    if drift is not None:
        summary += f"; clock {'+' if drift >= 0 else ''}{drift} s off ({timezone})"
    return _result(True, summary, **detail)


def discover_uhppote(broadcast: str = "255.255.255.255:60000", timeout_s: float = 2.0) -> list[dict[str, Any]]:
    from uhppoted.uhppote import Uhppote

    u = Uhppote(bind="0.0.0.0", broadcast=broadcast, listen="0.0.0.0:60001")
    out = []
    for c in u.get_all_controllers(timeout=timeout_s):
        out.append({"serial": c.controller, "address": str(c.ip_address), "netmask": str(c.subnet_mask),
                    "gateway": str(c.gateway), "mac": c.mac_address, "firmware": c.version,
                    "date": c.date.isoformat() if c.date else None})
    return out


# ---- serial readers ---------------------------------------------------------------------------------------
def _open(cfg):
    import serial

    from .serial_link import open_port

    try:
        return open_port(cfg.serial), None
    except (serial.SerialException, OSError, ValueError) as exc:
        return None, _result(False, f"cannot open {cfg.serial.port}: {exc}", SERIAL_OPEN_FIX, device=cfg.id,
                             port=str(cfg.serial.port))


def probe_osdp(cfg, timeout_s: float = 2.0) -> dict[str, Any]:
    from osdp import ControlPanel, LibFlag, LogLevel, PDInfo

    from .osdp import FilterChannel
    from .osdp_frame import FrameParser

    port, failed = _open(cfg)
    if failed:
        return failed
    where = f"OSDP address {cfg.address} on {cfg.serial.port} at {cfg.serial.baudrate} baud"
    scbk = bytes.fromhex(cfg.scbk.resolve().strip()) if cfg.scbk is not None else None
    channel = FilterChannel(port, FrameParser(expect_address=cfg.address, expect_reply=True))
    cp = ControlPanel([PDInfo(cfg.address, channel, scbk=scbk, name=cfg.id,
                              flags=[LibFlag.EnforceSecure] if scbk else [])], log_level=LogLevel.Emergency)
    cp.start()
    online = False
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not channel.dead:
            if cp.is_online(cfg.address):
                online = True
                break
            time.sleep(0.05)
        detail: dict[str, Any] = {"device": cfg.id, "port": str(cfg.serial.port), "address": cfg.address,
                                  "rx_bytes": channel.rx_bytes, "frames": dict(channel.parser.stats)}
        if online:
            try:
                pd = cp.get_pd_id(cfg.address)
                detail.update(vendor=f"0x{pd.vendor_code:06X}", model=pd.model, version=pd.version,
                              serial_number=f"0x{pd.serial_number:08X}", firmware=f"0x{pd.firmware_version:06X}")
            except Exception as exc:  # the binding raises various types when the ID is not in yet
                detail["id_error"] = str(exc)
            detail["secure_channel"] = bool(scbk) and cp.is_sc_active(cfg.address)
    finally:
        try:
            cp.teardown()
        finally:
            port.close()
    if online:
        ident = f"vendor {detail.get('vendor')}, serial {detail.get('serial_number')}" if "vendor" in detail else ""
        return _result(True, f"reader online at {where}" + (f" ({ident})" if ident else ""), **detail)
    if channel.dead:
        return _result(False, f"{cfg.serial.port} failed during the probe: {channel.dead}", SERIAL_OPEN_FIX,
                       **detail)
    st = detail["frames"]
    if detail["rx_bytes"] and not st["frames"]:
        hint = "bytes arrive but none is a valid OSDP frame: wrong baud rate or A/B swapped; " + OSDP_FIX
        if st["wrong_address"]:
            hint = f"a reader answers at another address; set the right `address:` in edge.yaml; " + OSDP_FIX
        return _result(False, f"no valid reply from {where}", hint, **detail)
    return _result(False, f"no reply from {where} in {timeout_s:g} s", OSDP_FIX, **detail)


def probe_wiegand(cfg, timeout_s: float = 2.0) -> dict[str, Any]:
    from .converter import ConverterParser
    from .wiegand import WiegandError, decode_bits

    port, failed = _open(cfg)
    if failed:
        return failed
    parser = ConverterParser(cfg.profile, cfg.format)
    cards, rejected = [], 0
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            data = port.read(256)
            for bits in parser.feed(data) if data else []:
                try:
                    cards.append(decode_bits(bits, cfg.format).credential)
                except WiegandError:
                    rejected += 1
            if not data:
                time.sleep(0.02)
        for bits in parser.flush():
            try:
                cards.append(decode_bits(bits, cfg.format).credential)
            except WiegandError:
                rejected += 1
    finally:
        port.close()
    summary = f"{cfg.serial.port} open ({cfg.profile}); {len(cards)} card read(s) in {timeout_s:g} s"
    if not cards:
        summary += " (present a card during the probe to see it here)"
    return _result(True, summary, device=cfg.id, cards=cards, rejected=rejected, frames=dict(parser.stats))
