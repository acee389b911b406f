"""`edge probe serial-ports | modbus | uart | bins` — installer checks of bin-level sensors.

Exit codes: 0 everything answered, 1 something did not (the output says what to fix), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from edge.config.devices import REGISTER_MAP_PRESETS, BinCalibration, RegisterMap, SerialPort


def _units(text: str) -> list[int]:
    """"3", "1,2,5" or "1-8" -> unit addresses."""
    units: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                units.extend(range(a, b + 1))
            elif part.strip():
                units.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unit, list (1,2) or range (1-8)") from None
    if not units or any(not 1 <= u <= 247 for u in units):
        raise argparse.ArgumentTypeError("Modbus units are 1..247")
    return units


def _serial_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    p.add_argument("--baudrate", type=int, default=9600, help="default 9600 (what these sensors ship with)")
    p.add_argument("--parity", choices=["N", "E", "O"], default="N")
    p.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    p.add_argument("--empty-mm", type=int, help="with --full-mm: also show the fill level")
    p.add_argument("--full-mm", type=int)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def _serial_cfg(args) -> SerialPort:
    return SerialPort(port=args.port, baudrate=args.baudrate, parity=args.parity, stopbits=args.stopbits)


def _calibration(args) -> BinCalibration | None:
    if args.empty_mm is None or args.full_mm is None:
        return None
    return BinCalibration(bin="probe", empty_mm=args.empty_mm, full_mm=args.full_mm)


def _print(result: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        print(("OK   " if result["ok"] else "FAIL ") + result["summary"])
        if result.get("fix"):
            print("  fix: " + result["fix"])
    return 0 if result["ok"] else 1


def _cmd_serial_ports(args) -> int:
    from .probe import list_serial_ports

    ports = list_serial_ports(args.paths)
    if args.json:
        print(json.dumps(ports, ensure_ascii=False, indent=2))
        return 0
    if not ports:
        print("no serial ports found (plug in the USB-RS485 adapter; ptys can be given as arguments)")
        return 1
    for p in ports:
        real = f" -> {p['realpath']}" if p.get("realpath") and p["realpath"] != p["device"] else ""
        ids = f" [{p['vid']}:{p['pid']}]" if p.get("vid") else ""
        print(f"{p['device']}{real}  {p.get('description') or ''}{ids}")
    return 0


def _cmd_modbus(args) -> int:
    from .probe import probe_modbus_async

    try:
        rm = RegisterMap.model_validate(REGISTER_MAP_PRESETS[args.map])
    except KeyError:
        print(f"unknown map {args.map!r}; presets: {', '.join(sorted(REGISTER_MAP_PRESETS))}", file=sys.stderr)
        return 2
    units = [u for group in args.unit for u in group]
    cal = _calibration(args)
    result = asyncio.run(probe_modbus_async(_serial_cfg(args), units, rm, args.timeout,
                                            {u: cal for u in units} if cal else None))
    return _print(result, args.json)


def _cmd_uart(args) -> int:
    from .probe import probe_uart_async

    result = asyncio.run(probe_uart_async(_serial_cfg(args), args.seconds, _calibration(args)))
    return _print(result, args.json)


def _cmd_bins(args) -> int:
    from edge.cli.common import load_config_or_exit
    from edge.config.devices import ModbusLevelBus, UartLevelSensor

    from .probe import probe_device

    cfg = load_config_or_exit(args.config)
    devices = [d for d in cfg.devices if isinstance(d, (ModbusLevelBus, UartLevelSensor))
               and (not args.device or d.id in args.device)]
    if not devices:
        print("no matching modbus_level / uart_level devices in " + str(args.config), file=sys.stderr)
        return 2
    rc = 0
    results = []
    for d in devices:
        r = probe_device(d, args.timeout)
        results.append(r)
        if not args.json:
            rc |= _print(r, False)
        elif not r["ok"]:
            rc = 1
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    return rc


def register_probe(probe_sub) -> None:
    p = probe_sub.add_parser("serial-ports", help="list serial ports (USB-RS485 adapters, by-id links, given ptys)")
    p.add_argument("paths", nargs="*", help="extra device paths to check (e.g. a pty from a simulator)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_serial_ports)

    p = probe_sub.add_parser("modbus", help="ask Modbus RTU level sensors for distance and temperature",
                             description="Is sensor N on PORT responding, and what does it read? "
                                         "Example: edge probe modbus --port /dev/ttyUSB0 --unit 3")
    _serial_args(p)
    p.add_argument("--unit", type=_units, action="append", required=True,
                   help="Modbus address(es): 3, 1,2,5 or 1-8 (repeatable)")
    p.add_argument("--map", default="dyp", help=f"register map preset ({', '.join(sorted(REGISTER_MAP_PRESETS))})")
    p.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for each answer")
    p.set_defaults(func=_cmd_modbus)

    p = probe_sub.add_parser("uart", help="listen to a UART ultrasonic sensor (A02YYUW / DYP, FF H L SUM frames)")
    _serial_args(p)
    p.add_argument("--seconds", type=float, default=2.0, help="how long to listen")
    p.set_defaults(func=_cmd_uart)

    p = probe_sub.add_parser("bins", help="probe every bin-level device configured in edge.yaml")
    p.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
    p.add_argument("--device", action="append", help="only this device id (repeatable)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bins)
