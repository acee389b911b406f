"""`edge demo`: the compound in a box."""
from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path


async def _run(args) -> dict:
    from edge.runtime.logs import setup_logging

    from .compound import DemoCompound

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="edge-demo-"))
    setup_logging(args.log_level, json_logs=True, stream=open(workdir / "gateway.log", "a", encoding="utf-8")
                  if _mk(workdir) else None)
    demo = DemoCompound(workdir, speed=args.speed, web_host=args.host, web_port=args.port,
                        horizon_s=args.duration or 3600)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out = sys.stderr if args.json else sys.stdout
    try:
        await demo.start()
        for _ in range(100):
            if demo.web_url():
                break
            await asyncio.sleep(0.1)
        print(f"\n  Compound in a box — speed x{args.speed:g}, data in {workdir}", file=out)
        print(f"  Console:  {demo.web_url() or '(web console not available)'}", file=out)
        for name, pw in demo.logins.items():
            print(f"  Login:    {name} / {pw}   (one-time demo password)", file=out)
        print(f"  Broker:   {demo.broker.url}   gateway log: {workdir / 'gateway.log'}\n", file=out, flush=True)
        t_end = time.monotonic() + args.duration if args.duration else None
        last: dict = {}
        while not stop.is_set():
            try:
                async with asyncio.timeout(2.0):
                    await stop.wait()
            except TimeoutError:
                pass
            line, last = demo.status_line(last)
            print("  " + line, file=out, flush=True)
            if t_end is not None and time.monotonic() >= t_end:
                break
        await demo.drain(timeout=args.drain)
        return demo.summary()
    finally:
        await demo.stop()


def _mk(p: Path) -> bool:
    p.mkdir(parents=True, exist_ok=True)
    return True


def _demo(args) -> int:
    summary = asyncio.run(_run(args))
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.json else 2))
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("demo", help="run a whole simulated compound (broker, devices, cameras, county) end to end")
    p.add_argument("--speed", type=float, default=5.0, help="time compression (default 5: ~2 minutes for all alerts)")
    p.add_argument("--duration", type=float, default=0, help="stop after S real seconds and print a JSON summary")
    p.add_argument("--workdir", help="where the demo keeps its data (default: a new temporary folder)")
    p.add_argument("--host", default="127.0.0.1", help="console listen address (0.0.0.0 to open it to the LAN)")
    p.add_argument("--port", type=int, default=8080, help="console port (0 = any free port)")
    p.add_argument("--drain", type=float, default=60, help="seconds to wait at the end for the county to catch up")
    p.add_argument("--json", action="store_true", help="status lines to stderr, only the JSON summary to stdout")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=_demo)
