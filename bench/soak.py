"""Soak: the demo compound (edge/demo/compound.py) at R x its resident traffic for M minutes, with an uplink flap
(Mosquitto stopped, then started) every N minutes; one sample a minute, one JSON document at the end.

Usage: python bench/soak.py [--json] [--minutes 30] [--rate 5] [--flap-every 5] [--flap-seconds 30]
       edge bench soak --json --minutes 30

What runs: everything `edge demo` runs (Mosquitto, county simulator, 2 UHPPOTE controllers, OSDP reader, Modbus bins,
3 MJPEG cameras, the gateway with analytics and web console, the demo's scripted timeline), plus the soak's own
traffic, driven from here through the simulators so it takes the real driver paths:
  - resident card swipes at the two gates: the demo's `_traffic` model (a card every 8..22 simulated s), R x as often;
  - OSDP card reads at building 2: one every 30..90 simulated s, R x as often;
  - bins: each of the 4 bins fills steadily (one report_change_pct = 5 % step every 300/R simulated s, i.e. R bin.level
    reports per 300 s where the idle demo sends one periodic report), reaches bin.full, is emptied, and fills again.
  Camera analytics run at the demo's own pace (scene loops are not multiplied).

Measured: the demo runs the gateway IN THIS PROCESS (together with the county, the device simulators and the
cameras' HTTP servers), so RSS, file descriptors, threads and CPU are those of this whole Python process; Mosquitto
is a separate process and is reported on its own (broker_rss_mb). Latency per sample window: for every message the
county committed in the window (county.db `messages.received_ms`), the event's `ts_ms` and its bus commit time
(`events.created_ms`) from the gateway's SQLite. The gateway (and, in the demo, the county) runs on the demo's
ScaledClock, so those are converted back to real time: real = wall0 + (scaled - wall0) / speed. Access events carry the controller's
timestamp, which has 1 s (simulated) resolution, so event->county includes up to 1/speed s of truncation;
commit->county does not.

The end: traffic stops, the broker is up, the demo drains (every event acknowledged by the county, no gap open),
and the county's SQLite is checked: every outbox seq 1..last_seq present exactly once (primary key (gateway, seq)),
one row per event id, nothing recorded as lost.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

log = logging.getLogger("bench.soak")

CARDS = [8165537, 8165538, 9001001, 9001002, 7654321]  # the demo's resident cards


def nearest_rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (hand-written: statistics.quantiles interpolates and needs >= 2 values; a p99 of
    a latency window should be a latency that really happened)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100.0 * len(s)) - 1)]


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) in value per hour: a leak shows as a steady slope, warm-up does not."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return None if den <= 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600.0


def file_mb(p: Path) -> float:
    try:
        return round(p.stat().st_size / 1e6, 3)
    except FileNotFoundError:
        return 0.0


def dir_mb(p: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(p):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return round(total / 1e6, 2)


class Traffic:
    """The soak's extra load, R x the resident traffic, through the real simulators."""

    def __init__(self, demo, rate: float, seed: int = 7):
        self.demo, self.rate = demo, rate
        self.clock = demo.clock
        self.rng = random.Random(seed)
        self.swipes = self.reads = self.fills = self.empties = 0
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if self.rate <= 0:
            return
        self.tasks = [asyncio.create_task(self._swipes(), name="soak-swipes"),
                      asyncio.create_task(self._reads(), name="soak-reads"),
                      asyncio.create_task(self._bins(), name="soak-bins")]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _swipes(self) -> None:
        rng = random.Random(self.rng.random())
        while True:
            await self.clock.sleep(rng.uniform(8, 22) / self.rate)
            sim = rng.choice(self.demo.controllers)
            sim.swipe(rng.choice(CARDS), door=1, granted=rng.random() > 0.1, direction=rng.choice([1, 2]))
            self.swipes += 1

    async def _reads(self) -> None:
        rng = random.Random(self.rng.random())
        while True:
            await self.clock.sleep(rng.uniform(30, 90) / self.rate)
            self.demo.reader.card(90, rng.randint(1, 65535))
            self.reads += 1

    async def _bins(self) -> None:
        # the scripted timeline fills and empties a-kitchen and heats b-other: leave the bins to it until it ends
        timeline = next((t for t in self.demo._tasks if t.get_name() == "timeline"), None)
        if timeline is not None:
            await asyncio.wait([timeline])
        step_s = 300.0 / self.rate  # simulated seconds per 5 % of fill
        await asyncio.gather(*(self._bin_cycle(b, i * step_s) for i, b in enumerate(self.demo.scenarios)))

    async def _bin_cycle(self, bin_id: str, delay_s: float) -> None:
        sc = self.demo.scenarios[bin_id]
        step_s = 300.0 / self.rate
        await self.clock.sleep(delay_s)
        while True:
            over = max(0.0, 96.0 - sc.fill_pct()) / 5.0 * step_s
            sc.fill_to(96, over_s=over)
            self.fills += 1
            await self.clock.sleep(over + step_s)  # full for one report period: bin.full raised
            sc.empty()
            self.empties += 1
            await self.clock.sleep(step_s)


class LoopLag:
    """Event-loop lag probe: how late a 100 ms sleep wakes up (the demo shares this loop with the gateway)."""

    def __init__(self):
        self.lags: list[float] = []
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.1)
            self.lags.append((time.perf_counter() - t - 0.1) * 1000)

    def take(self) -> list[float]:
        out, self.lags = self.lags, []
        return out


class WindowPoll:
    """Once a second between samples: the outbox's peak and how long the broker was down in the window (a sample
    taken once a minute would miss a 30 s flap's backlog)."""

    def __init__(self, demo):
        self.demo = demo
        self.depth_max = 0
        self.down_s = 0

    async def run(self) -> None:
        store = self.demo.ctx.store
        while True:
            await asyncio.sleep(1.0)
            self.depth_max = max(self.depth_max, await store.call(store.outbox_depth))
            self.down_s += 0 if self.demo.broker.running else 1

    def take(self) -> tuple[int, int]:
        out = (self.depth_max, self.down_s)
        self.depth_max = self.down_s = 0
        return out


class Soak:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)
        self.samples: list[dict] = []
        self.flaps: list[dict] = []
        self.lag = LoopLag()

    # ---- sampling ------------------------------------------------------------------------------------------
    def real_ms(self, scaled_ms: int) -> float:
        c = self.demo.clock
        w0 = c._wall0 * 1000.0
        return w0 + (scaled_ms - w0) / c.speed

    def scaled_ms(self, real_ms: float) -> float:
        c = self.demo.clock
        w0 = c._wall0 * 1000.0
        return w0 + (real_ms - w0) * c.speed

    def county_real_ms(self, ms: int) -> float:
        """The county stamps received_ms with its own clock: the demo's ScaledClock if it was given one."""
        return self.real_ms(ms) if getattr(self.demo.county, "_time", None) == self.demo.clock.time else ms

    def _latencies(self, t0_ms: int, t1_ms: int) -> dict:
        if getattr(self.demo.county, "_time", None) == self.demo.clock.time:
            t0_ms, t1_ms = int(self.scaled_ms(t0_ms)), int(self.scaled_ms(t1_ms))
        rows = self.cdb.execute("SELECT event_id, received_ms FROM messages WHERE received_ms >= ? AND received_ms < ?",
                                (t0_ms, t1_ms)).fetchall()
        got: dict[str, tuple[int, int]] = {}
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT id, ts_ms, created_ms FROM events WHERE id IN ({','.join('?' * len(chunk))})"
            for eid, ts, created in self.gdb.execute(q, chunk):
                got[eid] = (ts, created)
        ev, cm = [], []
        for eid, recv in rows:
            if eid in got:
                ts, created = got[eid]
                recv_real = self.county_real_ms(recv)
                ev.append(recv_real - self.real_ms(ts))
                cm.append(recv_real - self.real_ms(created))

        def r(x):
            return None if x is None else round(x, 1)

        return {"county_msgs": len(rows), "unmatched": len(rows) - len(ev),
                "event_to_county_ms": {"p50": r(nearest_rank(ev, 50)), "p99": r(nearest_rank(ev, 99)),
                                       "max": r(max(ev) if ev else None)},
                "commit_to_county_ms": {"p50": r(nearest_rank(cm, 50)), "p99": r(nearest_rank(cm, 99)),
                                        "max": r(max(cm) if cm else None)}}

    def _broker_rss_mb(self) -> float | None:
        proc = self.demo.broker.proc
        if proc is None or proc.poll() is not None:
            return None
        try:
            return round(psutil.Process(proc.pid).memory_info().rss / 1e6, 1)
        except psutil.Error:
            return None

    async def sample(self, label: float | str, t_prev_ms: int) -> tuple[dict, int]:
        # process figures first, before this sample opens anything
        mem = self.proc.memory_info()
        fds = self.proc.num_fds()
        threads = self.proc.num_threads()
        cpu = self.proc.cpu_percent(None)
        now_ms = int(time.time() * 1000)
        ctx, store = self.demo.ctx, self.demo.ctx.store
        data = Path(self.demo.gateway.config.storage.path)
        depth = await store.call(store.outbox_depth)
        last_seq = await store.call(store.last_seq)
        rep = self.demo.county.report()
        lat = await asyncio.to_thread(self._latencies, t_prev_ms, now_ms)
        lags = self.lag.take()
        depth_max, down_s = self.poll.take()
        health = ctx.supervisor.health()
        committed = ctx.bus.committed
        s = {
            "minute": label, "t_s": round(time.monotonic() - self.t_start, 1),
            "rss_mb": round(mem.rss / 1e6, 1), "fds": fds, "threads": threads, "cpu_pct": round(cpu, 1),
            "wal_mb": file_mb(data / "edge.db-wal"), "db_mb": file_mb(data / "edge.db"),
            "data_dir_mb": dir_mb(data), "county_wal_mb": file_mb(self.workdir / "county.db-wal"),
            "outbox_depth": depth, "outbox_depth_max_in_window": max(depth, depth_max), "last_seq": last_seq, "events_committed": committed,
            "events_in_window": committed - (self.samples[-1]["events_committed"] if self.samples else 0),
            "county_unique": rep["unique"], "county_duplicates": rep["duplicates"], "county_gaps_open": rep["gaps_open"],
            "uplink_up": self.demo.broker.running, "uplink_down_s_in_window": down_s,
            "broker_rss_mb": self._broker_rss_mb(),
            **lat,
            "loop_lag_ms": {"p99": round(nearest_rank(lags, 99) or 0, 1), "max": round(max(lags, default=0), 1)},
            "restarts": sum(v.get("restarts", 0) for v in health.values()),
        }
        self.samples.append(s)
        print(json.dumps(s), file=sys.stderr, flush=True)  # progress: one line a sample
        return s, now_ms

    # ---- flaps ---------------------------------------------------------------------------------------------
    async def flapper(self) -> None:
        a = self.args
        if a.flap_every <= 0:
            return
        timeline = next((t for t in self.demo._tasks if t.get_name() == "timeline"), None)
        period = a.flap_every * 60
        k = 1
        while True:
            await asyncio.sleep(max(0.0, self.t_start + k * period - time.monotonic()))
            if timeline is not None and not timeline.done():
                await asyncio.wait([timeline])  # the timeline has its own outage: never two at once
                await asyncio.sleep(30)  # and the uplink gets back on its feet before the next one
            if time.monotonic() - self.t_start + a.flap_seconds > a.minutes * 60:
                return  # a flap must end inside the run: the final drain is not an outage
            rec = {"start_s": round(time.monotonic() - self.t_start, 1), "seconds": a.flap_seconds}
            self.flaps.append(rec)
            await self.demo.uplink_outage(a.flap_seconds * self.demo.speed)  # scenario seconds = real * speed
            rec["end_s"] = round(time.monotonic() - self.t_start, 1)
            k = math.floor((time.monotonic() - self.t_start) / period) + 1  # the next slot still ahead

    # ---- the run -------------------------------------------------------------------------------------------
    async def run(self) -> dict:
        from edge.demo.compound import DemoCompound

        a = self.args
        self.demo = DemoCompound(self.workdir, speed=a.speed, web_port=0, horizon_s=a.minutes * 60 + 600)
        duration = a.minutes * 60
        traffic = flap_task = lag_task = poll_task = None
        try:
            await self.demo.start()
            self.t_start = time.monotonic()
            data = Path(self.demo.gateway.config.storage.path)
            # read-only connections for the latency join, opened once (a constant fd offset, counted from sample 1)
            self.cdb = sqlite3.connect(f"file:{self.workdir / 'county.db'}?mode=ro", uri=True, check_same_thread=False)
            self.gdb = sqlite3.connect(f"file:{data / 'edge.db'}?mode=ro", uri=True, check_same_thread=False)
            traffic = Traffic(self.demo, a.rate)
            traffic.start()
            flap_task = asyncio.create_task(self.flapper(), name="soak-flaps")
            lag_task = asyncio.create_task(self.lag.run(), name="soak-lag")
            self.poll = WindowPoll(self.demo)
            poll_task = asyncio.create_task(self.poll.run(), name="soak-poll")
            n = max(1, math.ceil(duration / a.sample_s))
            t_prev_ms = int(time.time() * 1000)
            for k in range(1, n + 1):
                await asyncio.sleep(max(0.0, self.t_start + min(k * a.sample_s, duration) - time.monotonic()))
                _, t_prev_ms = await self.sample(round(min(k * a.sample_s, duration) / 60, 2), t_prev_ms)
            # stop the load, end any flap in progress, then let everything reach the county
            await traffic.stop()
            flap_task.cancel()
            await asyncio.gather(flap_task, return_exceptions=True)
            if not self.demo.broker.running:
                self.demo.broker.start()
                if self.flaps and "end_s" not in self.flaps[-1]:
                    self.flaps[-1]["end_s"] = round(time.monotonic() - self.t_start, 1)
                    self.flaps[-1]["cut_short"] = True
            t_drain = time.monotonic()
            drained = await self.demo.drain(timeout=a.drain)
            drain_s = round(time.monotonic() - t_drain, 1)
            final, _ = await self.sample("after_drain", t_prev_ms)
            check = await asyncio.to_thread(self.exactly_once)
            return self.result(traffic, drained, drain_s, final, check)
        finally:
            for task in (lag_task, poll_task):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if traffic is not None:
                await traffic.stop()
            for db in (getattr(self, "cdb", None), getattr(self, "gdb", None)):
                if db is not None:
                    db.close()
            await self.demo.stop()

    def exactly_once(self) -> dict:
        """Straight from the two SQLite files, not from the county's in-memory tracker."""
        gid = self.demo.gateway.config.gateway.id
        row = self.gdb.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        last_seq = row[0] if row else 0
        n, lo, hi, ids = self.cdb.execute("SELECT count(*), min(seq), max(seq), count(DISTINCT event_id) FROM messages "
                                          "WHERE gateway_id = ?", (gid,)).fetchone()
        lost = self.cdb.execute("SELECT count(*) FROM lost WHERE gateway_id = ?", (gid,)).fetchone()[0]
        # by event id too: every outbox row still on the gateway reached the county under its own seq, and the county
        # holds no event the gateway never stored
        outbox = dict(self.gdb.execute("SELECT seq, event_id FROM outbox"))
        county = dict(self.cdb.execute("SELECT seq, event_id FROM messages WHERE gateway_id = ?", (gid,)))
        gw_events = {r[0] for r in self.gdb.execute("SELECT id FROM events")}
        mismatched = sum(1 for seq, eid in outbox.items() if county.get(seq) != eid)
        unknown = sum(1 for eid in county.values() if eid not in gw_events)
        ok = (n == last_seq and lo == 1 and hi == last_seq and ids == n and lost == 0 and mismatched == 0
              and unknown == 0)
        return {"ok": ok, "gateway_last_seq": last_seq, "county_rows": n, "county_min_seq": lo, "county_max_seq": hi,
                "county_distinct_event_ids": ids, "lost_ranges": lost, "outbox_rows_checked": len(outbox),
                "outbox_rows_missing_or_different_at_county": mismatched,
                "county_events_unknown_to_gateway": unknown}

    def result(self, traffic: Traffic, drained: bool, drain_s: float, final: dict, check: dict) -> dict:
        a = self.args
        run = [s for s in self.samples if s["minute"] != "after_drain"]
        from2 = [s for s in run if isinstance(s["minute"], float) and s["minute"] >= 2] or run
        base = from2[0]
        end = run[-1]
        rep = self.demo.county.report()
        summary = self.demo.summary()
        minutes = max(1e-9, a.minutes)

        half = max(1, len(from2) // 2)
        early = statistics.median(s["rss_mb"] for s in from2[:half])
        late = statistics.median(s["rss_mb"] for s in from2[half:] or from2)

        def p99s(key: str) -> list:
            return [s[key]["p99"] for s in run]

        return {
            "bench": "soak",
            "config": {"minutes": a.minutes, "rate_x": a.rate, "speed": a.speed, "flap_every_min": a.flap_every,
                       "flap_seconds": a.flap_seconds, "sample_s": a.sample_s, "cpu_count": os.cpu_count(),
                       "measured": "this Python process: gateway + county + device/camera simulators (in-process);"
                                   " Mosquitto separately"},
            "samples": self.samples,
            "growth": {
                "rss_mb_first": run[0]["rss_mb"], "rss_mb_minute2": base["rss_mb"], "rss_mb_end": end["rss_mb"],
                "rss_mb_max": max(s["rss_mb"] for s in run),
                "rss_growth_pct_from_minute2": round((end["rss_mb"] - base["rss_mb"]) / base["rss_mb"] * 100, 2),
                # medians of the first and second half from minute 2 on: a leak moves them, a transient spike does not
                "rss_median_mb_early": early, "rss_median_mb_late": late,
                "rss_median_growth_pct": round((late - early) / early * 100, 2),
                "rss_slope_mb_per_h_from_minute2": (lambda v: None if v is None else round(v, 2))(
                    slope_per_hour([(s["t_s"], s["rss_mb"]) for s in from2])),
                "fds_first": run[0]["fds"], "fds_end": end["fds"], "fds_min": min(s["fds"] for s in run),
                "fds_max": max(s["fds"] for s in run), "fd_delta": end["fds"] - run[0]["fds"],
                "fd_delta_from_minute2": end["fds"] - base["fds"],
                "threads_first": run[0]["threads"], "threads_end": end["threads"],
                "threads_max": max(s["threads"] for s in run),
                "wal_mb_max": max(s["wal_mb"] for s in run), "wal_mb_end": end["wal_mb"],
                "db_mb_first": run[0]["db_mb"], "db_mb_end": end["db_mb"],
                "data_dir_mb_end": end["data_dir_mb"], "outbox_depth_max": max(s["outbox_depth_max_in_window"] for s in run),
                "broker_rss_mb_max": max((s["broker_rss_mb"] or 0) for s in run),
            },
            "latency": {
                "event_to_county_p99_ms_per_sample": p99s("event_to_county_ms"),
                "commit_to_county_p99_ms_per_sample": p99s("commit_to_county_ms"),
                "loop_lag_p99_ms_per_sample": [s["loop_lag_ms"]["p99"] for s in run],
            },
            "totals": {
                "events_committed": final["events_committed"], "last_seq": final["last_seq"],
                "events_per_min": round(end["events_committed"] / minutes, 1),
                "events_by_kind": summary["events_by_kind"], "alerts_by_kind": summary["alerts_by_kind"],
                "soak_traffic": {"swipes": traffic.swipes, "osdp_reads": traffic.reads, "bin_fills": traffic.fills,
                                 "bin_empties": traffic.empties},
                "flaps": self.flaps, "uplink_outages": self.demo.outages,
                "restarts": summary["restarts"],
            },
            "county": {"received": rep["received"], "unique": rep["unique"], "duplicates": rep["duplicates"],
                       "gaps_open": rep["gaps_open"], "gaps_resent": rep["gaps_resent"],
                       "schema_errors": rep["schema_errors"], "drained": drained, "drain_s": drain_s,
                       "outbox_depth_end": final["outbox_depth"]},
            "exactly_once_check": check,
            "exactly_once": bool(drained and check["ok"] and rep["gaps_open"] == 0 and rep["schema_errors"] == 0),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="compact JSON on stdout (progress lines go to stderr)")
    ap.add_argument("--minutes", type=float, default=30, help="soak time in real minutes (default 30)")
    ap.add_argument("--rate", type=float, default=5, help="traffic multiplier over the resident rate (default 5)")
    ap.add_argument("--speed", type=float, default=5, help="the demo's time compression (default 5, as `edge demo`)")
    ap.add_argument("--flap-every", type=float, default=5, help="uplink flap every N real minutes (0 = none)")
    ap.add_argument("--flap-seconds", type=float, default=30, help="how long the broker stays down (real seconds)")
    ap.add_argument("--sample-s", type=float, default=60, help="sampling period in real seconds (default 60)")
    ap.add_argument("--drain", type=float, default=180, help="seconds to wait at the end for the county")
    ap.add_argument("--workdir", help="keep the demo's data here (default: a temporary folder, removed)")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args()
    if a.minutes * 60 < a.sample_s:  # a short smoke run still gets a few samples
        a.sample_s = max(5.0, a.minutes * 60 / 3)

    from edge.runtime.logs import setup_logging

    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="edge-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # the gateway logs at INFO: into the workdir, out of the JSON and the progress lines
    stream = open(workdir / "gateway.log", "a", encoding="utf-8")
    setup_logging(a.log_level, json_logs=True, stream=stream)
    try:
        out = asyncio.run(Soak(a, workdir).run())
    finally:
        stream.close()
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(out, ensure_ascii=False, indent=None if a.json else 2))
    return 0 if out["exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
