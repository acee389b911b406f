"""python -m simulators.county --broker URL [--report] [--db PATH] [--duration S | --until-idle S]

Consumes everything gateways publish (shared subscription, manual acks after its own SQLite commit),
validates, de-duplicates, re-orders, asks for resends of gaps. With --report prints one JSON document
{received, unique, duplicates, schema_errors, gaps_open, gaps_resent, per_gateway: {...}} when it stops
(SIGINT/SIGTERM, --duration elapsed, or --until-idle seconds without new messages and no open gaps).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys
import time

from .county import County


def _tls(args) -> ssl.SSLContext | None:
    if not (args.broker.startswith("mqtts://") or args.ca):
        return None
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


async def _main(args) -> dict:
    county = County(args.broker, args.db, prefix=args.prefix, group=args.group, client_id=args.client_id,
                    tls=_tls(args), username=args.username, password=args.password,
                    request_resends=not args.no_resend, gap_grace_s=args.gap_grace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(county.run())
    t0 = time.monotonic()
    last_n, last_change = -1, time.monotonic()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except asyncio.TimeoutError:
            pass
        if args.duration and time.monotonic() - t0 >= args.duration:
            break
        if args.until_idle:
            if county.received != last_n:
                last_n, last_change = county.received, time.monotonic()
            elif time.monotonic() - last_change >= args.until_idle and county.report()["gaps_open"] == 0 \
                    and county.received > 0:
                break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    rep = county.report()
    county.close()
    return rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulators.county", description=__doc__.splitlines()[0])
    ap.add_argument("--broker", required=True, help="mqtt://host:1883 or mqtts://host:8883")
    ap.add_argument("--report", action="store_true", help="print the JSON report when stopping")
    ap.add_argument("--db", default="county.db", help="SQLite file of the simulator (default county.db)")
    ap.add_argument("--prefix", default="cgw/v1")
    ap.add_argument("--group", default="county", help="shared subscription group")
    ap.add_argument("--client-id", default="county-sim-1")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--ca", help="CA file for mqtts")
    ap.add_argument("--cert", help="client certificate (mutual TLS)")
    ap.add_argument("--key", help="client key")
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--until-idle", type=float, default=0, help="stop after this many idle seconds with no gaps")
    ap.add_argument("--gap-grace", type=float, default=2.0, help="seconds a gap must persist before a resend")
    ap.add_argument("--no-resend", action="store_true", help="detect gaps but do not ask for resends")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    rep = asyncio.run(_main(args))
    if args.report:
        print(json.dumps(rep, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
