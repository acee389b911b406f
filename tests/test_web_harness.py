"""Shared harness for the console and push tests (imported by tests/test_web_*.py and tests/test_notify_*.py).

A real gateway in-process: edge.runtime.Gateway with a config file in tmp_path, real SQLite store, bus,
alert manager, push service and web console on a free port. The hardware plug-ins (drivers, cameras,
analytics, uplink) are left out so these tests stay fast and independent of their state; camera pictures
come from the real FrameHub fed with a real photo (tests/data, see SOURCES.md).
"""
from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp
import cv2

from edge.config import load_config
from edge.events import MediaRef, uuid7
from edge.runtime import Gateway
from edge.vision import FrameHub, FrameResult

DATA = Path(__file__).parent / "data"
LANE_PHOTO = DATA / "opencv_leuvenB_lane_bicycles.jpg"
BUILDERS = ["edge.runtime.housekeeping", "edge.alerts", "edge.notify", "edge.web"]
PASSWORD = "correct horse battery staple"

CONFIG = """\
# edge.yaml for the console tests. This comment must survive zone edits.
gateway:
  id: gw-web-1
  compound_id: cp-web
  county_code: "330106"
  name: 绿园小区
  timezone: Asia/Shanghai

storage:
  path: {data}
  commit_interval_ms: 20

devices:
  - type: modbus_level      # ultrasonic fill-level sensors (driver not loaded in these tests)
    id: bins-bus-a
    serial: {{port: {serial_port}}}
    timeout_s: 0.2
    sensors:
      - {{unit: 1, bin: a-kitchen, station: station-a, empty_mm: 1200, full_mm: 250}}
      - {{unit: 2, bin: a-other, station: station-a, empty_mm: 1200, full_mm: 250}}

cameras:
  - id: cam-lane-1
    name: 3号楼消防通道
    url: rtsp://192.0.2.10/stream   # not opened: the camera driver is not loaded

zones:
  # the lane in front of building 3
  - id: lane-3
    camera: cam-lane-1
    type: fire_lane
    name: 3号楼消防通道
    polygon: [[0.10, 0.55], [0.90, 0.55], [0.98, 0.98], [0.02, 0.98]]
    dwell_s: 120   # two minutes

schedules:
  - id: drop-hours
    windows: ["07:00-09:00", "18:00-21:00"]

stations:
  - id: station-a
    name: A区垃圾分类投放点
    schedule: drop-hours
    bins: [a-kitchen, a-other]

alerts:
  push_retry_min_s: {retry_min}
  push_retry_max_s: {retry_max}
{alerts}
web:
  host: 127.0.0.1
  port: {port}
  public_url: http://console.example
  login_max_failures: 3
  login_window_s: 60
  max_body_kb: 8
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, alerts_yaml: str = "", port: int | None = None, retry: tuple = (1, 4),
                 serial_port: str = "/dev/ttyUSB0") -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data", port=port or free_port(), alerts=alerts_yaml,
                                  retry_min=retry[0], retry_max=retry[1], serial_port=serial_port),
                    encoding="utf-8")
    return path


async def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll (sync or async) `cond` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tries += 1
        await asyncio.sleep(0.001 if tries < 20 else 0.02)


async def step(h, clock, seconds: float, each: float | None = None) -> None:
    """Move a FakeClock forward in lockstep with the push worker: never jump past a wake-up it has not
    handled yet (the worker does real I/O between two fake-clock sleeps)."""
    n = h.ctx.services["notify"]
    left = float(seconds)

    async def idle():
        try:
            await wait_for(lambda: n.sleeping and n.wake_at > clock.monotonic() - 1e-9, what="push worker idle")
        except AssertionError:
            raise AssertionError(f"push worker not idle: sleeping={n.sleeping} wake_at={n.wake_at} "
                                 f"now={clock.monotonic()} loops={n.loops}") from None
    while left > 1e-9:
        await idle()
        dt = min(left, max(1e-3, n.wake_at - clock.monotonic()), each or left)
        await clock.advance(dt)
        left -= dt
    await idle()


class Client:
    """A browser-like API client: cookie session + the CSRF header on state changes."""

    def __init__(self, base: str):
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.me: dict | None = None

    async def login(self, name: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, data = await self.request("POST", "/api/login", json={"name": name, "password": password})
        if status == 200:
            self.csrf, self.me = data["csrf"], data
        return status, data

    async def request(self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
                      headers: dict | None = None, csrf: bool = True) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            hdrs.setdefault("X-CSRF-Token", self.csrf)
        async with self.session.request(method, self.base + path, json=json, data=data, headers=hdrs,
                                        allow_redirects=False) as r:
            body = await r.read()
            if r.content_type == "application/json":
                import json as _json
                return r.status, _json.loads(body)
            return r.status, body

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw):
        return await self.request("POST", path, json=json if json is not None else {}, **kw)

    async def close(self) -> None:
        await self.session.close()


class Harness:
    def __init__(self, tmp_path: Path, config_path: Path, clock=None):
        self.tmp_path = tmp_path
        self.config_path = config_path
        self.clock = clock
        self.gw: Gateway | None = None
        self.ctx = None
        self.clients: list[Client] = []

    @property
    def web(self):
        return self.ctx.services["web"]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    async def start(self) -> "Harness":
        cfg = load_config(self.config_path)
        self.gw = Gateway(cfg, self.config_path, clock=self.clock)
        self.ctx = await self.gw.start()
        self.ctx.services.setdefault("vision", FrameHub())
        if cfg.web.enabled:
            await wait_for(lambda: self.web.port, what="web console to listen")
        return self

    async def stop(self) -> None:
        for c in self.clients:
            await c.close()
        self.clients.clear()
        if self.gw is not None:
            await self.gw.stop()
            self.gw = None

    async def add_user(self, name: str, role: str) -> None:
        acc = self.web.accounts
        if await self.ctx.store.call(acc.get_user, name) is None:
            await self.ctx.store.call(acc.add_user, name, role, PASSWORD)

    async def client(self, role: str | None = None, name: str | None = None) -> Client:
        c = Client(self.base)
        self.clients.append(c)
        if role:
            name = name or f"{role}1"
            await self.add_user(name, role)
            status, data = await c.login(name)
            assert status == 200, data
        return c

    def publish_frame(self, camera: str = "cam-lane-1", photo: Path = LANE_PHOTO, width: int = 640) -> None:
        img = cv2.imread(str(photo))
        assert img is not None, photo
        h = int(img.shape[0] * width / img.shape[1])
        frame = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
        ts = self.ctx.clock.time()
        self.ctx.services["vision"].publish(FrameResult(camera=camera, ts=ts, frame=frame, detections=[], tracks=[]))

    async def add_evidence(self, photo: Path = LANE_PHOTO) -> str:
        media_id = uuid7()
        data = photo.read_bytes()
        await self.ctx.store.call(self.ctx.store.add_media, media_id, data, role="evidence")
        return media_id

    async def raise_fire_lane(self, zone: str = "lane-3", evidence: bool = True) -> dict:
        """What the fire-lane analytic emits after the dwell time; returns the alert it raises."""
        media = (MediaRef(await self.add_evidence(), role="evidence"),) if evidence else ()
        e = self.ctx.emit_new("fire_lane.blocked", "cam-lane-1",
                              {"zone": zone, "camera": "cam-lane-1", "object": "bicycle", "duration_s": 130.0,
                               "state": "blocked", "box": [120.0, 300.0, 260.0, 420.0]}, media=media)
        return await self.alert_for(e.id)

    async def raise_door_forced(self, door: int = 1) -> dict:
        e = self.ctx.emit_new("door.forced", "gate-north", {"controller": "gate-north", "door": door,
                                                            "door_name": "北门入口"})
        return await self.alert_for(e.id)

    async def alert_for(self, event_id: str) -> dict:
        mgr = self.ctx.services["alerts"]

        def find():
            for a in mgr.list(limit=50):
                if a["detail"].get("event_id") == event_id:
                    return a
            return None
        return await wait_for(lambda: self.ctx.store.call(find), what="the alert to be raised")


async def start_harness(tmp_path: Path, monkeypatch, alerts_yaml: str = "", clock=None,
                        builders: list[str] | None = None, port: int | None = None,
                        retry: tuple = (1, 4), serial_port: str = "/dev/ttyUSB0") -> Harness:
    import edge.runtime.plugins as plugins

    monkeypatch.setattr(plugins, "BUILDERS", builders or BUILDERS)
    path = write_config(tmp_path, alerts_yaml, port, retry, serial_port)
    return await Harness(tmp_path, path, clock).start()
