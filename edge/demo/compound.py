"""The whole compound on one machine: Mosquitto, the county platform, 2 door controllers (UHPPOTE UDP), an OSDP
reader (pty), 4 bin sensors on a Modbus RTU bus (pty) at 2 stations, 3 cameras (MJPEG) and the gateway.

All simulated devices and the gateway share one ScaledClock: `--speed 10` makes ten minutes of compound life
(dwell times, poll intervals, offline timers) happen in one real minute, with the analytics unchanged.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.clock import ScaledClock
from edge.config import load_config

log = logging.getLogger("edge.demo")

TZ = "Asia/Shanghai"
CONTROLLERS = [(405419896, "gate-north", {1: "北门入口", 2: "北门出口"}), (405419897, "gate-south", {1: "南门"})]
BINS = [  # unit, bin id, station
    (1, "a-kitchen", "station-a"), (2, "a-other", "station-a"), (3, "b-kitchen", "station-b"),
    (4, "b-other", "station-b")]


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop_windows(now_local: dt.datetime, horizon_h: float) -> list[str]:
    """The usual 07-09 / 18-21 windows when the demo runs outside them; otherwise a window that starts after the
    demo's simulated horizon, so the scripted drop really is off-hours."""
    usual = [(7, 9), (18, 21)]
    end = now_local + dt.timedelta(hours=horizon_h)
    inside = any(s <= h < e for s, e in usual for h in {now_local.hour, end.hour})
    if not inside and end.date() == now_local.date():
        return ["07:00-09:00", "18:00-21:00"]
    start = (end.hour + 1) % 24
    if start == 0:
        start = 1
    return [f"{start:02d}:00-{min(start + 2, 24):02d}:00"]


class DemoCompound:
    def __init__(self, workdir: Path, speed: float = 5.0, web_host: str = "127.0.0.1", web_port: int = 0,
                 horizon_s: float = 3600):
        self.workdir = Path(workdir)
        self.speed = float(speed)
        self.web_host, self.web_port = web_host, web_port
        self.horizon_s = horizon_s
        self.clock = ScaledClock(self.speed)
        self.broker = None
        self.county = None
        self.controllers = []
        self.reader = None
        self.bins = None
        self.scenarios: dict[str, object] = {}
        self.cameras: dict[str, object] = {}
        self.gateway = None
        self.ctx = None
        self.logins: dict[str, str] = {}
        self._tasks: list[asyncio.Task] = []
        self.timeline_log: list[tuple[float, str]] = []
        self.outages = 0

    # ---- bring-up ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        from edge.runtime import Gateway
        from simulators.access.osdp_sim import OsdpReaderSimulator
        from simulators.access.uhppote_sim import UhppoteSimulator
        from simulators.bins.modbus_sim import ModbusLevelSimulator, SimSensor
        from simulators.bins.scenario import BinScenario
        from simulators.broker import MosquittoBroker
        from simulators.cameras.mjpeg import MjpegCamera
        from simulators.county.county import County

        from .scenes import clip_frames, scene_frames

        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "dev").mkdir(exist_ok=True)
        self.broker = MosquittoBroker(self.workdir / "mosquitto").start()
        self.county = County(self.broker.url, self.workdir / "county.db", gap_grace_s=2.0, clock=self.clock.time)
        self._tasks.append(asyncio.create_task(self.county.run(), name="county"))

        listen_ports = [_free_udp_port() for _ in CONTROLLERS]
        for (serial, _id, _doors), lp in zip(CONTROLLERS, listen_ports):
            sim = UhppoteSimulator(serial, listener=("127.0.0.1", lp), clock=self.clock.time, timezone=TZ)
            await sim.start()
            self.controllers.append(sim)
        self.reader = OsdpReaderSimulator(self.workdir / "dev" / "ttyOSDP0", address=1).start()

        for unit, bin_id, _st in BINS:
            self.scenarios[bin_id] = BinScenario(self.clock.time, empty_mm=1200, full_mm=250,
                                                 fill_pct=15 + 10 * unit, jitter_mm=3, seed=unit)
        self.bins = ModbusLevelSimulator([SimSensor(u, self.scenarios[b]) for u, b, _ in BINS],
                                         link_path=self.workdir / "dev" / "ttyBINS0")
        await self.bins.start()

        lane, lane_spec = scene_frames("lane_bicycles", self.speed, fps=4)
        station, station_spec = scene_frames("station_night_drop", self.speed, fps=4)
        gate = clip_frames("intel_person_bicycle_car.mp4")
        for cam_id, scene in (("cam-lane", lane), ("cam-station-a", station), ("cam-gate", gate)):
            self.cameras[cam_id] = MjpegCamera(scene).start()

        cfg_path = self.workdir / "edge.yaml"
        cfg_path.write_text(self.config_text(listen_ports, lane_spec, station_spec), encoding="utf-8")
        cfg = load_config(cfg_path)
        self._create_logins(cfg)
        self.gateway = Gateway(cfg, cfg_path, clock=self.clock)
        self.ctx = await self.gateway.start()
        self._tasks.append(asyncio.create_task(self.timeline(), name="timeline"))

    def config_text(self, listen_ports, lane_spec, station_spec) -> str:
        now_local = dt.datetime.fromtimestamp(self.clock.time(), ZoneInfo(TZ))
        windows = drop_windows(now_local, self.horizon_s * self.speed / 3600)
        speed = self.speed
        lane_zone = dict(lane_spec.spec["zones"][0], id="lane-3", camera="cam-lane", name="3号楼消防通道")
        ground = dict(station_spec.spec["zones"][0], id="station-a-ground", camera="cam-station-a",
                      station="station-a", name="A区投放点地面")
        st_extra = {k: v for k, v in station_spec.spec["stations"][0].items() if k not in ("id", "schedule", "bins")}
        doc = {
            "gateway": {"id": "gw-demo-0001", "compound_id": "demo-lvyuan", "county_code": "330106",
                        "name": "绿园小区 (演示)", "timezone": TZ},
            "uplink": {"broker": self.broker.url, "keepalive_s": 10, "telemetry_interval_s": 60,
                       "drain_rate_per_s": 2000, "reconnect_min_s": 0.5, "reconnect_max_s": 5},
            "storage": {"path": str(self.workdir / "data"), "commit_interval_ms": 100},
            "logging": {"level": "INFO"},
            "devices": [
                *[{"type": "uhppote", "id": cid, "serial": serial, "address": "127.0.0.1", "port": sim.port,
                   "listen_port": lp, "doors": doors, "poll_interval_s": 30}
                  for (serial, cid, doors), sim, lp in zip(CONTROLLERS, self.controllers, listen_ports)],
                {"type": "osdp", "id": "reader-b2", "serial": {"port": str(self.reader.path)}, "address": 1,
                 "door": 1, "name": "2号楼单元门"},
                {"type": "modbus_level", "id": "bins-bus", "serial": {"port": self.bins.path},
                 "poll_interval_s": 10, "sensors": [
                     {"unit": u, "bin": b, "station": st, "empty_mm": 1200, "full_mm": 250, "report_every_s": 300}
                     for u, b, st in BINS]},
            ],
            "cameras": [
                {"id": cid, "name": name, "url": self.cameras[cid].stream_url,
                 "snapshot_url": self.cameras[cid].snapshot_url, "detect_fps": round(min(5.0, 2.0 / speed), 3),
                 "width": self.cameras[cid].scene.width, "height": self.cameras[cid].scene.height,
                 "offline_after_s": 30, "motion": {"recheck_s": 30}}
                for cid, name in (("cam-lane", "3号楼消防通道"), ("cam-station-a", "A区垃圾投放点"),
                                  ("cam-gate", "北门"))],
            "zones": [lane_zone, ground],
            "schedules": [{"id": "drop-hours", "windows": windows}],
            "stations": [
                {"id": "station-a", "name": "A区垃圾分类投放点", "schedule": "drop-hours", "camera": "cam-station-a",
                 "bins": ["a-kitchen", "a-other"], **st_extra},
                {"id": "station-b", "name": "B区垃圾分类投放点", "schedule": "drop-hours",
                 "bins": ["b-kitchen", "b-other"]},
            ],
            "alerts": {"cooldown_s": 120},
            "web": {"host": self.web_host, "port": self.web_port or _free_tcp_port(), "language": "zh"},
        }
        return "# generated by `edge demo`\n" + json.dumps(doc, ensure_ascii=False, indent=2) + "\n"

    def _create_logins(self, cfg) -> None:
        """No default password even in the demo: fresh random logins, printed once."""
        from edge.store import Store
        from edge.web.auth import Accounts

        store = Store(Path(cfg.storage.path) / "edge.db")
        try:
            accounts = Accounts(store)
            for name, role in (("installer", "installer"), ("manager", "manager")):
                if accounts.get_user(name) is None:
                    pw = secrets.token_urlsafe(9)
                    accounts.add_user(name, role, pw)
                    self.logins[name] = pw
        finally:
            store.close()

    # ---- the scripted day (scenario seconds; the clock runs `speed` times faster) -------------------------------
    async def at(self, t: float) -> None:
        await self.clock.sleep(max(0.0, self.t0 + t - self.clock.monotonic()))

    def note(self, what: str) -> None:
        self.timeline_log.append((round(self.clock.monotonic() - self.t0, 1), what))
        log.info("demo timeline", extra={"scenario_s": round(self.clock.monotonic() - self.t0, 1), "step": what})

    async def timeline(self) -> None:
        self.t0 = self.clock.monotonic()
        north, south = self.controllers
        steps = [
            (5, "card granted at the north gate", lambda: north.swipe(8165537, door=1)),
            (0, "installer captures the clear-lane and clear-ground references", self.capture_references),
            (12, "unknown card denied at the north gate", lambda: north.swipe(1234567, door=2, granted=False)),
            (20, "OSDP card read at building 2", lambda: self.reader.card(90, 324)),
            (25, "bin a-kitchen filling up", lambda: self.scenarios["a-kitchen"].fill_to(96, over_s=150)),
            (30, "card granted at the south gate", lambda: south.swipe(7654321, door=1)),
            (45, "south gate forced open", lambda: south.forced(1)),
            (60, "north gate held open", lambda: north.held_open(1)),
            (80, "PIN typed at building 2", lambda: self.reader.keypad("1234#")),
            (120, "bin b-other heating up", lambda: self.scenarios["b-other"].heat_to(75, over_s=90)),
            (200, "gate camera drops out", lambda: self.cameras["cam-gate"].stall()),
            (300, "gate camera back", lambda: self.cameras["cam-gate"].resume()),
            (320, "bin a-kitchen emptied", lambda: self.scenarios["a-kitchen"].empty()),
            (360, "bin b-other cooled down", lambda: self.scenarios["b-other"].heat_to(24, over_s=60)),
        ]
        traffic = asyncio.create_task(self._traffic())
        try:
            for t, what, fn in steps:
                await self.at(t)
                r = fn()
                if asyncio.iscoroutine(r):
                    await r
                self.note(what)
            await self.at(400)
            await self.uplink_outage(60)
        finally:
            traffic.cancel()

    async def capture_references(self) -> None:
        """What an installer does on site: "the lane / the ground is clear now". Both scenes open on the clear
        view, so the demo hands the analytics that view (exactly what the camera shows at that moment)."""
        analytics = self.ctx.services.get("analytics")
        if analytics is None:
            return
        for cam in ("cam-lane", "cam-station-a"):
            try:
                analytics.capture_reference(cam, by="installer", frame=self.cameras[cam].scene.frames[0].copy(),
                                            note="demo: zone is clear now")
            except Exception as exc:  # refused (e.g. objects in the zone): the demo goes on without clutter checks
                log.warning("could not capture reference", extra={"camera": cam, "error": str(exc)})

    async def _traffic(self) -> None:
        """Residents coming and going: a card every ~15 simulated seconds."""
        import random

        rng = random.Random(3)
        cards = [8165537, 8165538, 9001001, 9001002, 7654321]
        while True:
            await self.clock.sleep(rng.uniform(8, 22))
            sim = rng.choice(self.controllers)
            sim.swipe(rng.choice(cards), door=1, granted=rng.random() > 0.1, direction=rng.choice([1, 2]))

    async def uplink_outage(self, seconds: float) -> None:
        self.note(f"uplink outage: broker down for {seconds:g} s")
        self.broker.stop()
        self.outages += 1
        await self.clock.sleep(seconds)
        self.broker.start()
        self.note("uplink back")

    # ---- reporting ---------------------------------------------------------------------------------------------
    def web_url(self) -> str | None:
        web = self.ctx.services.get("web") if self.ctx else None
        return getattr(web, "url", None) if web else None

    def status_line(self, last: dict) -> tuple[str, dict]:
        ctx = self.ctx
        committed = ctx.bus.committed
        now = time.monotonic()
        rate = (committed - last.get("committed", 0)) / max(1e-6, now - last.get("t", now - 1))
        alerts = ctx.services.get("alerts")
        open_alerts = alerts.health().get("open", 0) if alerts else 0
        rep = self.county.report()
        line = (f"events/s {rate:5.1f} | alerts open {open_alerts:2d} | outbox {ctx.store.outbox_depth():4d} | "
                f"county received {rep['unique']:5d} gaps {rep['gaps_open']}")
        return line, {"committed": committed, "t": now}

    def delivered(self) -> bool:
        rep = self.county.report()
        gw = rep["per_gateway"].get(self.gateway.config.gateway.id, {})
        last = self.ctx.store.last_seq()
        return self.ctx.store.outbox_depth() == 0 and rep["gaps_open"] == 0 and gw.get("contiguous_to") == last

    async def drain(self, timeout: float = 60.0) -> bool:
        """After the scripted part: wait until every event reached the county and no gap is open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.ctx.bus.flush()
            if self.delivered():
                return True
            await asyncio.sleep(0.5)
        return False

    def summary(self) -> dict:
        store = self.ctx.store
        with store.transaction() as conn:
            alerts_by_kind = {k: n for k, n in conn.execute("SELECT kind, count(*) FROM alerts GROUP BY kind")}
        rep = self.county.report()
        health = self.ctx.supervisor.health()
        return {
            "speed": self.speed,
            "events_by_kind": dict(sorted(store.events_by_kind().items())),
            "alerts_by_kind": dict(sorted(alerts_by_kind.items())),
            "county": {"received": rep["received"], "unique": rep["unique"], "duplicates": rep["duplicates"],
                       "gaps_open": rep["gaps_open"], "gaps_resent": rep["gaps_resent"],
                       "schema_errors": rep["schema_errors"]},
            "outbox_depth": store.outbox_depth(),
            "delivered_all": self.delivered(),
            "last_seq": store.last_seq(),
            "restarts": {k: v["restarts"] for k, v in health.items() if v.get("restarts")},
            "uplink_outages": self.outages,
            "timeline": self.timeline_log,
        }

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.gateway is not None and self.ctx is not None:
            await self.gateway.stop()
        for cam in self.cameras.values():
            cam.stop()
        if self.bins is not None:
            await self.bins.stop()
        if self.reader is not None:
            self.reader.stop()
        for sim in self.controllers:
            await sim.stop()
        if self.county is not None:
            self.county.close()
        if self.broker is not None:
            self.broker.stop()


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
