"""`edge probe uhppote ...`, `edge probe osdp ...`, `edge probe wiegand ...` (registered by drivers/cli.py)."""
from __future__ import annotations

import json
import sys


def _device(args, kind: str, build: dict):
    """The device from edge.yaml (--config/--device) or from the command-line flags."""
    from edge.config.devices import OsdpReader, UhppoteController, WiegandSerial

    if args.device:
        from edge.config import ConfigError, load_config

        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            for p in exc.problems:
                print(p, file=sys.stderr)
            return None
        args.timezone = cfg.gateway.timezone
        d = cfg.device(args.device)
        if d is None or d.type != kind:
            print(f"{args.config}: no {kind} device with id {args.device!r}", file=sys.stderr)
            return None
        return d
    model = {"uhppote": UhppoteController, "osdp": OsdpReader, "wiegand_serial": WiegandSerial}[kind]
    try:
        return model.model_validate({"type": kind, "id": "probe", **build})
    except ValueError as exc:
        print(f"bad arguments: {exc}", file=sys.stderr)
        return None


def _print(result: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        print(("OK   " if result["ok"] else "FAIL ") + result["summary"])
        if result["fix"]:
            print("     fix: " + result["fix"])
        for k, v in result["detail"].items():
            print(f"     {k}: {v}")
    return 0 if result["ok"] else 1


def _uhppote(args) -> int:
    from .probe import discover_uhppote, probe_device

    if args.discover:
        found = discover_uhppote(args.broadcast, args.timeout)
        if args.json:
            print(json.dumps(found, ensure_ascii=False, indent=2))
        else:
            for c in found:
                print(f"{c['serial']:>10}  {c['address']:<15} mask {c['netmask']}  gw {c['gateway']}  "
                      f"mac {c['mac']}  firmware {c['firmware']}  {c['date'] or ''}")
            print(f"{len(found)} controller(s) answered on {args.broadcast}", file=sys.stderr)
        return 0 if found else 1
    if not args.device and (args.serial is None or not args.address):
        print("give --serial and --address, or --config and --device, or --discover", file=sys.stderr)
        return 2
    d = _device(args, "uhppote", {"serial": args.serial, "address": args.address, "port": args.port})
    return 2 if d is None else _print(probe_device(d, args.timeout, args.timezone), args.json)


def _serial_build(args) -> dict:
    return {"serial": {"port": args.port, "baudrate": args.baud}}


def _osdp(args) -> int:
    from .probe import probe_device

    if not args.device and not args.port:
        print("give --port (and --address, --baud), or --config and --device", file=sys.stderr)
        return 2
    build = {**_serial_build(args), "address": args.address}
    if args.scbk:
        build["scbk"] = args.scbk
    d = _device(args, "osdp", build)
    return 2 if d is None else _print(probe_device(d, args.timeout), args.json)


def _wiegand(args) -> int:
    from .probe import probe_device

    if not args.device and not args.port:
        print("give --port (and --profile), or --config and --device", file=sys.stderr)
        return 2
    d = _device(args, "wiegand_serial", {**_serial_build(args), "profile": args.profile})
    return 2 if d is None else _print(probe_device(d, args.timeout), args.json)


def register_probe(sub) -> None:
    def common(p):
        p.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
        p.add_argument("--device", help="device id in edge.yaml (instead of the flags below)")
        p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait (default 2)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("uhppote", help="does a UHPPOTE/微耕 controller answer; its event index, clock, doors")
    common(p)
    p.add_argument("--serial", type=int, help="controller serial number")
    p.add_argument("--address", help="controller IP address")
    p.add_argument("--port", type=int, default=60000)
    p.add_argument("--discover", action="store_true", help="list every controller answering a broadcast")
    p.add_argument("--broadcast", default="255.255.255.255:60000", help="broadcast address:port for --discover")
    p.add_argument("--timezone", default="Asia/Shanghai", help="the controllers' local time zone (for clock drift)")
    p.set_defaults(func=_uhppote)

    p = sub.add_parser("osdp", help="is an OSDP reader answering on a serial port; its identity")
    common(p)
    p.add_argument("--port", help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--address", type=int, default=0, help="OSDP PD address (default 0)")
    p.add_argument("--scbk", help="secure channel key, 32 hex digits (or env:NAME / file:PATH)")
    p.set_defaults(func=_osdp)

    p = sub.add_parser("wiegand", help="open a Wiegand-to-serial converter and show cards presented")
    common(p)
    p.add_argument("--port", help="serial port")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--profile", choices=["ascii_hex", "ascii_bits", "binary"], default="ascii_hex")
    p.set_defaults(func=_wiegand)
