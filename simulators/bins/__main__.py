"""Run a bin-sensor simulator standalone, for `edge probe` / `edge run` by hand.

    python -m simulators.bins modbus --link /tmp/ttyBINS0 --units 1,2 --fill 45 --temperature 30
    python -m simulators.bins uart --link /tmp/ttyA02 --distance 1953 --crc-rate 0.05

The port to open is printed (and stays the same across --unplug-every cycles).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import time

from .faults import FaultPlan
from .modbus_sim import ModbusLevelSimulator, SimSensor
from .scenario import BinScenario
from .uart_sim import UartLevelSimulator


def _scenario(args, seed: int) -> BinScenario:
    s = BinScenario(time.monotonic, empty_mm=args.empty_mm, full_mm=args.full_mm, temperature_c=args.temperature,
                    jitter_mm=args.jitter_mm, ghost_rate=args.ghost_rate, seed=seed)
    if args.distance is not None:
        s.distance_to(args.distance)
    else:
        s.fill_to(args.fill)
    if args.fill_to is not None:
        s.fill_to(args.fill_to, over_s=args.over_s)
    if args.heat_to is not None:
        s.heat_to(args.heat_to, over_s=args.over_s)
    return s


async def _main(args) -> None:
    faults = FaultPlan(seed=args.seed, crc_rate=args.crc_rate, truncate_rate=args.truncate_rate,
                       noise_rate=args.noise_rate)
    if args.kind == "modbus":
        units = [int(u) for u in args.units.split(",")]
        sim = ModbusLevelSimulator([SimSensor(u, _scenario(args, args.seed + u)) for u in units],
                                   link_path=args.link, faults=faults)
    else:
        sim = UartLevelSimulator(_scenario(args, args.seed), link_path=args.link, period_s=args.period_s,
                                 faults=faults)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(f"{args.kind} simulator on {sim.path} (9600 8N1); Ctrl-C to stop", flush=True)
    try:
        while not stop.is_set():
            if args.unplug_every:
                try:
                    await asyncio.wait_for(stop.wait(), args.unplug_every)
                except asyncio.TimeoutError:
                    sim.unplug()
                    print("unplugged", flush=True)
                    await asyncio.sleep(args.unplug_for)
                    sim.plug()
                    print(f"plugged back in on {sim.path}", flush=True)
            else:
                await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.bins", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["modbus", "uart"])
    ap.add_argument("--link", help="publish the port as this symlink (stable across unplug/replug)")
    ap.add_argument("--units", default="1", help="Modbus addresses on the bus, e.g. 1,2,3")
    ap.add_argument("--empty-mm", type=int, default=1200)
    ap.add_argument("--full-mm", type=int, default=250)
    ap.add_argument("--fill", type=float, default=30.0, help="initial fill %%")
    ap.add_argument("--distance", type=int, help="initial distance in mm (instead of --fill)")
    ap.add_argument("--fill-to", type=float, help="then fill to this %% over --over-s seconds")
    ap.add_argument("--heat-to", type=float, help="then heat to this temperature over --over-s seconds")
    ap.add_argument("--over-s", type=float, default=600)
    ap.add_argument("--temperature", type=float, default=22.0)
    ap.add_argument("--jitter-mm", type=int, default=3)
    ap.add_argument("--ghost-rate", type=float, default=0.0)
    ap.add_argument("--period-s", type=float, default=0.1, help="UART frame period")
    ap.add_argument("--crc-rate", type=float, default=0.0)
    ap.add_argument("--truncate-rate", type=float, default=0.0)
    ap.add_argument("--noise-rate", type=float, default=0.0)
    ap.add_argument("--unplug-every", type=float, default=0.0, help="yank the adapter every N seconds")
    ap.add_argument("--unplug-for", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
