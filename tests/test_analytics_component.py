"""The analytics component in the gateway wiring: FrameHub in, bus + AlertManager out, sensor events fused.

Frames are real photos (the courtyard, then the same with real bags pasted above the "bin rim"); the detector
is not needed here (no people or vehicles in them), so the FrameResults carry no detections -- what the camera
pipeline publishes for such a scene.
"""
import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.alerts.manager import AlertManager
from edge.analytics import build_components
from edge.analytics.base import Emission
from edge.analytics.sink import EmissionSink
from edge.clock import FakeClock
from edge.config import load_config_text
from edge.runtime.bus import EventBus
from edge.runtime.context import RuntimeContext
from edge.store import Store
from edge.vision import FrameResult

DATA = Path(__file__).resolve().parent / "data"
START = 1_796_090_400.0


def config(tmp_path, zones: str) -> str:
    return f"""gateway:
  id: gw-test-1
  compound_id: cp-test
  county_code: "330106"
storage:
  path: {tmp_path / 'data'}
devices:
  - id: bins-b
    type: uart_level
    serial: {{port: /dev/ttyUSB9}}
    bin: b-other
    station: st-b
    empty_mm: 1500
    full_mm: 300
cameras:
  - id: cam-st
    url: file:///dev/null
    width: 640
    height: 480
stations:
  - id: st-b
    bins: [b-other]
    camera: cam-st
{zones}"""


ZONES = """zones:
  - id: st-b-rim
    camera: cam-st
    type: bin_station
    station: st-b
    dwell_s: 60
    clear_s: 30
    polygon: [[0.73, 0.60], [0.99, 0.60], [0.99, 0.77], [0.73, 0.77]]
"""


@pytest.fixture
async def gateway(tmp_path):
    cfg = load_config_text(config(tmp_path, ZONES))
    clock = FakeClock(START)
    store = Store(tmp_path / "data" / "edge.db", clock_ms=clock.time_ms)
    bus = EventBus(store, clock, commit_interval_ms=10)
    ctx = RuntimeContext(config=cfg, store=store, bus=bus, clock=clock)
    ctx.services["loop"] = asyncio.get_running_loop()
    mgr = AlertManager(cooldown_s=300)
    mgr.attach(ctx)
    (comp,) = build_components(cfg, ctx)
    bus.start()
    task = asyncio.create_task(comp.run(ctx))
    yield ctx, comp, mgr
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await bus.stop()
    store.close()


async def settle(bus):
    for _ in range(4):
        await bus.flush()
        for _ in range(200):
            if all(s.queue.empty() for s in bus._subs):
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def courtyard():
    clear = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenA_lane_empty.jpg")), (640, 480), cv2.INTER_AREA)
    bags = cv2.resize(cv2.imread(str(DATA / "usls_trash_bags.jpg")), (640, 427))
    heaped = clear.copy()
    heaped[300:360, 475:625] = cv2.resize(bags[250:340, 230:450], (150, 60))
    return clear, heaped


async def test_sensor_full_fused_with_what_the_camera_sees(gateway, courtyard):
    ctx, comp, mgr = gateway
    clear, heaped = courtyard
    clock, hub = ctx.clock, ctx.services["vision"]

    async def show(img, seconds):
        for _ in range(0, seconds, 10):
            hub.publish(FrameResult("cam-st", clock.time(), img, [], []))
            await comp.wait_idle()
            await settle(ctx.bus)
            await clock.advance(10)

    with pytest.raises(ValueError, match="no frame"):
        comp.capture_reference("cam-st")
    await show(clear, 10)
    comp.capture_reference("cam-st", by="installer")
    ctx.emit_new("bin.full", "bins-b", {"bin": "b-other", "station": "st-b", "fill_pct": 93, "state": "raised"})
    await settle(ctx.bus)
    (alert,) = mgr.list(kind="bin.full")
    assert alert["title"] == "Bin b-other full (93.0 %, evidence: sensor)"
    await show(heaped, 120)
    (alert,) = mgr.list(kind="bin.full")
    assert alert["title"] == "Bin b-other full (93.0 %, evidence: sensor+vision)" and alert["state"] == "updated"
    assert len(alert["evidence"]) == 1  # the camera's snapshot of the heap
    await show(clear, 60)
    (alert,) = mgr.list(kind="bin.full")
    assert alert["title"] == "Bin b-other full (93.0 %, evidence: sensor)"
    ctx.emit_new("bin.full", "bins-b", {"bin": "b-other", "station": "st-b", "fill_pct": 8, "state": "cleared"})
    await settle(ctx.bus)
    (alert,) = mgr.list(kind="bin.full")
    assert alert["state"] == "cleared"
    stats = comp.station_stats("st-b", since_ms=int(START * 1000))
    assert stats["stations"]["st-b"]["overflow_minutes"] == pytest.approx(3.2, abs=0.3)
    assert comp.health()["sensor_events"] == 2  # the fusion's own bin.full events are not fed back


async def test_broken_frames_are_counted_never_crash(gateway):
    ctx, comp, _ = gateway
    hub = ctx.services["vision"]
    for bad in (None, np.zeros((480, 640), np.uint8), np.zeros((4, 4, 3), np.uint8), "not an image"):
        hub.publish(FrameResult("cam-st", ctx.clock.time(), bad, [], []))
        await comp.wait_idle()
    hub.publish(FrameResult("other-cam", ctx.clock.time(), None, [], []))  # not ours: ignored
    h = comp.health()
    assert h["cameras"]["cam-st"]["bad_frames"] == 4 and h["errors"] == 0 and hub.errors == 0


def test_invalid_emission_is_rejected_and_counted(tmp_path):
    cfg = load_config_text(config(tmp_path, ZONES))
    clock = FakeClock(START)
    store = Store(tmp_path / "x.db", clock_ms=clock.time_ms)
    try:
        emitted = []

        class Bus:  # the sink only needs emit(); keep the events to look at
            def emit(self, e):
                emitted.append(e)

        ctx = RuntimeContext(config=cfg, store=store, bus=Bus(), clock=clock)  # type: ignore[arg-type]
        sink = EmissionSink(ctx)
        out = sink.write_sync([Emission("fire_lane.blocked", "cam-st", {"zone": "z"}, START),  # camera missing
                               Emission("waste.litter", "cam-st", {"zone": "z", "state": "raised"}, START)])
        assert [e.kind for e in out] == ["waste.litter"] == [e.kind for e in emitted]
        assert sink.stats["rejected"] == 1
    finally:
        store.close()


def test_no_zones_no_component(tmp_path):
    cfg = load_config_text(config(tmp_path, "").split("stations:")[0])
    assert build_components(cfg, None) == []


async def test_console_hooks_and_zone_edits_apply_without_restart(gateway, courtyard):
    ctx, comp, _ = gateway
    clear, _ = courtyard
    hub = ctx.services["vision"]
    hub.publish(FrameResult("cam-st", ctx.clock.time(), clear, [], []))
    await comp.wait_idle()
    info = ctx.services["capture_reference"]("cam-st", "installer wu")
    assert info["by"] == "installer wu"
    one = ctx.services["station_stats"]("st-b")
    assert one["source"] == "analytics" and one["visits"] == 0
    before = comp.cameras["cam-st"]
    # same zones: nothing rebuilt (an ongoing episode would go on)
    assert ctx.services["zones_changed"](ctx.config)["kept"] == ["cam-st"] and comp.cameras["cam-st"] is before
    # the installer widens the rim zone and adds a fire lane: rebuilt, the clear reference is kept
    text = config(ctx.config.storage.path.parent, ZONES.replace("[0.73, 0.60], [0.99, 0.60]",
                                                                "[0.70, 0.58], [0.99, 0.58]") + """  - id: lane
    camera: cam-st
    type: fire_lane
    polygon: [[0.0, 0.70], [0.60, 0.68], [0.80, 0.99], [0.0, 0.99]]
""")
    new_cfg = load_config_text(text)
    res = ctx.services["zones_changed"](new_cfg)
    assert res == {"kept": [], "rebuilt": ["cam-st"], "removed": []}
    ca = comp.cameras["cam-st"]
    assert ca is not before and [f.zone.id for f in ca.fire_lanes] == ["lane"]
    assert ca.detector.has_reference and ca.detector.reference_info["by"] == "installer wu"
    # all zones removed (the station still names the camera): nothing left to watch on it
    res = ctx.services["zones_changed"](load_config_text(config(ctx.config.storage.path.parent, "")))
    assert res == {"kept": [], "rebuilt": ["cam-st"], "removed": []}
    assert comp.cameras["cam-st"].overflow == [] and comp.cameras["cam-st"].fire_lanes == []
