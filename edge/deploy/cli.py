"""`edge provision` and `edge doctor` (imports are lazy: `edge --help` stays fast on a Pi)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MARKS = {"ok": "✓", "fail": "✗", "todo": "…"}


def _layout(args):
    from .paths import Layout

    return Layout(Path(args.root))


def _provision(args) -> int:
    from .provision import ProvisionError, find_boot_file, provision

    layout = _layout(args)
    boot = Path(args.boot_file) if args.boot_file else None
    if args.from_boot:
        boot = boot or find_boot_file(layout)
        if boot is None:
            print("no boot-partition file found (looked for " +
                  ", ".join(str(p) for p in layout.boot_files()) + ")", file=sys.stderr)
            return 2
    identity = {"id": args.gateway_id, "compound_id": args.compound_id, "county_code": args.county_code,
                "name": args.name, "timezone": args.timezone}
    try:
        steps = provision(layout, identity=identity, boot_file=boot, broker=args.broker,
                          ca_file=Path(args.ca_file) if args.ca_file else None,
                          install_cert=Path(args.install_cert) if args.install_cert else None,
                          new_key=args.new_key, new_csr=args.new_csr)
    except ProvisionError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False, indent=2))
        else:
            print(f"✗ {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"✗ {exc.filename}: permission denied — run as root: sudo edge provision ...", file=sys.stderr)
        return 1
    failed = any(s.status == "fail" for s in steps)
    if args.json:
        print(json.dumps({"ok": not failed, "steps": [s.as_dict() for s in steps]}, ensure_ascii=False, indent=2))
        return 1 if failed else 0
    for s in steps:
        print(f"{MARKS[s.status]} {s.title}: {s.detail}")
        if s.fix:
            print(f"    {'fix' if s.status == 'fail' else 'next'}: {s.fix}")
    if args.print_csr and layout.csr.exists():
        print()
        print(layout.csr.read_text(), end="")
    return 1 if failed else 0


def _doctor(args) -> int:
    from . import doctor

    checks = doctor.run_doctor(args.config, _layout(args), timeout_s=args.timeout)
    print(doctor.render_json(checks) if args.json else doctor.render_text(checks))
    return 1 if any(c.failed for c in checks) else 0


def register_cli(sub) -> None:
    p = sub.add_parser("provision", help="first-boot identity: config ids, private key, CSR, install certificate")
    p.add_argument("--from-boot", action="store_true",
                   help="read ids from /boot/firmware/edge-gateway.yaml (or /boot/edge-gateway.yaml)")
    p.add_argument("--boot-file", help="read ids from this file (a gateway: and optional uplink: section)")
    p.add_argument("--gateway-id")
    p.add_argument("--compound-id")
    p.add_argument("--county-code", help="6-digit administrative division code")
    p.add_argument("--name", help="compound name shown in the console and alerts")
    p.add_argument("--timezone")
    p.add_argument("--broker", help="uplink broker URL, e.g. mqtts://iot.county.example:8883")
    p.add_argument("--ca-file", help="county CA certificate (PEM) to install as /etc/edge-gateway/county-ca.pem")
    p.add_argument("--install-cert", metavar="FILE", help="certificate returned by the county CA for our CSR")
    p.add_argument("--new-csr", action="store_true", help="write a fresh CSR with the same key (renewal)")
    p.add_argument("--new-key", action="store_true", help="generate a new key (the old certificate stops working)")
    p.add_argument("--print-csr", action="store_true", help="print the CSR (PEM) at the end")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # re-roots /etc, /var: tests, image builds
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_provision)

    p = sub.add_parser("doctor", help="installer checklist: config, clock, disk, devices, cameras, broker, certificate")
    p.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per device/camera/broker step")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # re-roots /etc, /var: tests, image builds
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_doctor)

