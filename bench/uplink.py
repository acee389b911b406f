"""Uplink benchmark against a local Mosquitto (prints one JSON document).

    python bench/uplink.py [--json] [--duration 60] [--latency-duration 20] [--drain 100000] [--quick]

1. sustained: events/s that are durable (group-committed to SQLite, synchronous=FULL) AND accepted by the broker
   (PUBACK < 0x80), with the producer keeping a backlog so the uplink is never idle; also creation->PUBACK
   latency percentiles at that load;
2. latency_200: creation->PUBACK latency p50/p99 at 200 events/s;
3. drain: seconds to publish a backlog of 100,000 queued events, no rate cap.
Defaults are the issue's (60 s, 100k); --quick shortens everything for a smoke run.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.events import Event, uuid7  # noqa: E402
from edge.store import Store  # noqa: E402
from simulators.broker import MosquittoBroker  # noqa: E402
from tests.helpers.bridge_harness import Runtime, make_config, wait_until  # noqa: E402


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 2)


class Probe:
    """Creation time of each emitted event -> PUBACK time, matched through the commit order (seqs)."""

    def __init__(self, rt: Runtime):
        self.emitted: collections.deque[float] = collections.deque()
        self.t_emit: dict[int, float] = {}
        self.latency: list[float] = []
        self.acked = 0
        rt.ctx.bus.on_commit(self._committed)
        rt.uplink.ack_listeners.append(self._acked)

    def emit(self, rt: Runtime, n: int) -> None:
        now = time.monotonic()
        for _ in range(n):
            rt.ctx.emit(rt.ctx.make_event("access.granted", "door-1", {"controller": "405419896", "door": 1}))
            self.emitted.append(now)

    def _committed(self, seqs: list[int]) -> None:
        for s in seqs:
            if self.emitted:
                self.t_emit[s] = self.emitted.popleft()

    def _acked(self, seqs: list[int]) -> None:
        now = time.monotonic()
        for s in seqs:
            self.acked += 1
            t = self.t_emit.pop(s, None)
            if t is not None:
                self.latency.append(now - t)


async def sustained(url: str, tmp: Path, duration: float) -> dict:
    rt = await Runtime(make_config(tmp / "sustained", url, uplink={"max_inflight": 1000, "telemetry_interval_s": 60},
                                   storage={"commit_interval_ms": 100})).start()
    try:
        probe = Probe(rt)
        await wait_until(lambda: rt.uplink.connected, 10, "connect")
        t0 = time.monotonic()
        a0 = probe.acked
        while time.monotonic() - t0 < duration:
            backlog = len(probe.emitted) + len(probe.t_emit)  # emitted, not yet PUBACKed
            if backlog < 20_000:  # keep the pipeline full, but bounded
                probe.emit(rt, 500)
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - t0
        acked = probe.acked - a0
        return {"duration_s": round(elapsed, 1), "events_acked": acked, "events_per_s": round(acked / elapsed),
                "latency_p50_ms": pct(probe.latency, 50), "latency_p99_ms": pct(probe.latency, 99),
                "rejected": dict(rt.uplink.rejected), "queue_size_errors": rt.uplink.c["queue_size_errors"],
                "backlog_at_end": backlog}
    finally:
        await rt.stop()


async def latency_at(url: str, tmp: Path, rate: float, duration: float) -> dict:
    rt = await Runtime(make_config(tmp / "latency", url, uplink={"telemetry_interval_s": 60},
                                   storage={"commit_interval_ms": 100})).start()
    try:
        probe = Probe(rt)
        await wait_until(lambda: rt.uplink.connected, 10, "connect")
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < duration:
            due = int((time.monotonic() - t0) * rate)
            if due > sent:
                probe.emit(rt, due - sent)
                sent = due
            await asyncio.sleep(0.002)
        await wait_until(lambda: probe.acked >= sent, 30, "all acked")
        return {"rate_per_s": rate, "events": sent, "latency_p50_ms": pct(probe.latency, 50),
                "latency_p99_ms": pct(probe.latency, 99), "latency_max_ms": pct(probe.latency, 100),
                "commit_interval_ms": 100}
    finally:
        await rt.stop()


async def drain(url: str, tmp: Path, n: int) -> dict:
    cfg = make_config(tmp / "drain", url, uplink={"max_inflight": 1000, "drain_rate_per_s": 0,
                                                  "telemetry_interval_s": 60})
    store = Store(Path(cfg.storage.path) / "edge.db")
    import cloud_bridge.outbox as ob

    ob.ensure_schema(store)
    for i in range(0, n, 5000):
        store.insert_events(Event(id=uuid7(), ts_ms=int(time.time() * 1000), kind="access.granted",
                                  gateway_id=cfg.gateway.id, compound_id=cfg.gateway.compound_id, source="door-1",
                                  payload={"controller": "405419896", "door": 1}) for _ in range(min(5000, n - i)))
    store.close()
    rt = Runtime(cfg)
    t0 = time.monotonic()
    await rt.start()
    try:
        await wait_until(lambda: rt.uplink.connected, 10, "connect")
        t_conn = time.monotonic()
        await wait_until(lambda: rt.uplink.c["acked"] >= n, 600, "backlog drained", interval=0.05)
        t_end = time.monotonic()
        await rt.uplink.flush()
        return {"events": n, "seconds": round(t_end - t_conn, 2), "events_per_s": round(n / (t_end - t_conn)),
                "seconds_including_start": round(t_end - t0, 2), "max_paho_queue": rt.uplink.max_paho_queue,
                "queue_size_errors": rt.uplink.c["queue_size_errors"]}
    finally:
        await rt.stop()


def _quiet_broker_log(broker: MosquittoBroker) -> None:
    """The launcher logs every packet (handy in tests); at benchmark rates that is ~1 GB of log."""
    write = broker.write_conf

    def quiet():
        conf = write()
        conf.write_text(conf.read_text().replace("log_type all", "log_type error\nlog_type warning"))
        return conf

    broker.write_conf = quiet


async def main_async(a) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    broker = MosquittoBroker(tmp / "mosquitto", extra_conf="max_inflight_messages 1000\nset_tcp_nodelay true\n")
    _quiet_broker_log(broker)
    broker.start()
    out: dict = {"broker": {"mosquitto": "2.0.x", "max_inflight_messages": 1000, "subscribers": 0},
                 "machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}}
    try:
        out["sustained"] = await sustained(broker.url, tmp, a.duration)
        out["latency_200"] = await latency_at(broker.url, tmp, 200, a.latency_duration)
        out["drain"] = await drain(broker.url, tmp, a.drain)
    finally:
        broker.stop()
    out["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out["goals"] = {"sustained_events_per_s": 5000, "drain_100k_s": 30}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON only (it always prints JSON)")
    ap.add_argument("--duration", type=float, default=60.0, help="sustained-throughput seconds (default 60)")
    ap.add_argument("--latency-duration", type=float, default=20.0, help="seconds at 200 events/s (default 20)")
    ap.add_argument("--drain", type=int, default=100_000, help="backlog size to drain (default 100000)")
    ap.add_argument("--quick", action="store_true", help="10 s / 5 s / 20,000: a smoke run")
    a = ap.parse_args(argv)
    if a.quick:
        a.duration, a.latency_duration, a.drain = 10.0, 5.0, 20_000
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(asyncio.run(main_async(a)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
