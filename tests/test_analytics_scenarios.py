"""Scenarios through the real pipeline: real photos (and real crops composed onto them) -> drivers/cameras
motion gate + models detector (shipped ONNX) + tracker -> analytics -> rules -> AlertManager -> SQLite,
on a FakeClock so minutes of dwell take a second or two.

The first test runs the gateway path itself (FrameHub, analytics component, real event bus with group
commit, AlertManager subscribed to the bus); the others run tests/scenes/* with the same objects driven
synchronously (edge.analytics.scenes, also behind `edge eval`).
"""
import asyncio
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.alerts.manager import AlertManager
from edge.analytics import build_components, scenes
from edge.clock import FakeClock
from edge.config import load_config_text
from edge.runtime.bus import EventBus
from edge.runtime.context import RuntimeContext
from edge.store import Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SCENES = ROOT / "tests" / "scenes"
START = 1_796_090_400.0  # 2026-12-01 10:00 Asia/Shanghai


@pytest.fixture(scope="module")
def detector():
    from models.runtime import shared_detector

    return shared_detector("default", threads=1)


def lane_config(tmp_path) -> str:
    return f"""gateway:
  id: gw-test-1
  compound_id: cp-test
  county_code: "330106"
storage:
  path: {tmp_path / 'data'}
cameras:
  - id: cam-lane
    url: file:///dev/null
    width: 640
    height: 480
zones:
  - id: lane-3
    camera: cam-lane
    type: fire_lane
    polygon: [[0.0, 0.70], [0.60, 0.68], [0.80, 0.99], [0.0, 0.99]]
"""


async def settle(bus, rounds: int = 4) -> None:
    """Let group commits reach the subscribers and the alert manager finish (it works on the store thread)."""
    for _ in range(rounds):
        await bus.flush()
        for _ in range(200):
            if all(s.queue.empty() for s in bus._subs):
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)


async def test_lane_blocked_by_bicycles_through_the_gateway_path(tmp_path, detector):
    """Empty lane, the two bicycles for 3 simulated minutes, empty again: exactly one blocked alert with a
    correct snapshot, then one cleared -- through FrameHub, the analytics component, bus and AlertManager."""
    cfg = load_config_text(lane_config(tmp_path))
    clock = FakeClock(START)
    store = Store(tmp_path / "data" / "edge.db", clock_ms=clock.time_ms)
    bus = EventBus(store, clock, commit_interval_ms=10)
    ctx = RuntimeContext(config=cfg, store=store, bus=bus, clock=clock)
    ctx.services["loop"] = asyncio.get_running_loop()
    mgr = AlertManager(cooldown_s=300)
    mgr.attach(ctx)
    (comp,) = build_components(cfg, ctx)
    bus.start()
    run = asyncio.create_task(comp.run(ctx))
    pipe = scenes.VisionPipeline(detector, "cam-lane", (640, 480))
    empty = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenA_lane_empty.jpg")), (640, 480), cv2.INTER_AREA)
    bikes = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenB_lane_bicycles.jpg")), (640, 480), cv2.INTER_AREA)
    hub = ctx.services["vision"]
    try:
        timeline = [(empty, 60), (bikes, 180), (empty, 120)]
        first = True
        for img, seconds in timeline:
            for _ in range(0, seconds, 10):
                hub.publish(pipe.step(img, clock.time()))
                await comp.wait_idle()
                if first:  # the installer presses "lane is clear now" in the console
                    info = comp.capture_reference("cam-lane", by="installer li")
                    assert info["by"] == "installer li" and info["frame_size"] == [640, 480]
                    first = False
                await settle(bus, 1)
                await clock.advance(10)
        await settle(bus)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)

    blocked = store.query_events(kind="fire_lane.blocked")
    cleared = store.query_events(kind="fire_lane.cleared")
    assert [e.payload["state"] for e in blocked] == ["blocked"]
    assert len(cleared) == 1
    b, c = blocked[0], cleared[0]
    assert b.payload["object"] == "bicycle" and b.payload["zone"] == "lane-3" and b.payload["camera"] == "cam-lane"
    assert b.ts_ms / 1000 - START == pytest.approx(180, abs=10)  # bicycles from 60 s + dwell 120 s
    assert c.ts_ms / 1000 - START == pytest.approx(270, abs=10)  # gone at 240 s + clear_s 30 s
    assert c.payload["duration_s"] == pytest.approx(180, abs=10) and c.payload["episode"] == b.payload["episode"]

    (alert,) = mgr.list(kind="fire_lane.blocked")
    assert alert["state"] == "cleared" and alert["zone"] == "lane-3"
    assert [h["action"] for h in mgr.history(alert["id"])] == ["raised", "cleared"]
    assert alert["title"].startswith("Fire lane lane-3 blocked by bicycle")
    lifecycle = [e.payload["state"] for e in reversed(store.query_events(kind="alert"))]
    assert lifecycle == ["raised", "cleared"]

    # the evidence: stored locally, linked to the event and the alert, showing the bicycles frame, annotated
    (mid,) = alert["evidence"]
    assert [m.media_id for m in b.media] == [mid] and b.media[0].role == "evidence"
    row, data = store.get_media(mid)
    assert row["role"] == "evidence" and row["event_id"] == b.id and row["alert_id"] == alert["id"]
    snap = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert snap.shape == (480, 640, 3)
    region = (slice(40, 300), slice(420, 640))  # buildings and sky, away from the captions and the zone
    d_bikes = np.abs(snap[region].astype(int) - bikes[region].astype(int)).mean()
    d_empty = np.abs(snap[region].astype(int) - empty[region].astype(int)).mean()
    assert d_bikes < 6 < 20 < d_empty, (d_bikes, d_empty)
    x1, y1, x2, y2 = (int(round(v)) for v in b.payload["box"])
    edge = snap[y1, x1 + 3:x2 - 3].astype(int)  # the box outline, drawn in red
    assert (edge[:, 2] > 150).mean() > 0.8 and (edge[:, 0] < 100).mean() > 0.8

    h = comp.health()
    assert h["errors"] == 0 and h["processed"] + h["skipped"] == h["received"] == 36
    assert comp.reference_status("cam-lane")["reference"] is True
    store.close()


SCENE_EVENTS = {
    # scene: {(kind, state): how many events}; every other alerting event must not appear
    # (lane_bicycles runs through the gateway path above, lane_traffic_then_parks and the others only in
    # `edge eval tests/scenes`, to keep this file's detector time down)
    "plaza_people_only": {},
    "lane_bicycles_passerby": {("fire_lane.blocked", "blocked"): 1, ("fire_lane.cleared", "cleared"): 1},
    "lane_bicycles_dusk": {("fire_lane.blocked", "blocked"): 1, ("fire_lane.cleared", "cleared"): 1},
    "lane_clutter_bags": {("fire_lane.blocked", "blocked"): 1, ("fire_lane.cleared", "cleared"): 1},
    "station_night_drop": {("waste.off_hours_drop", "raised"): 1, ("waste.litter", "raised"): 1,
                           ("waste.litter", "cleared"): 1},
    "station_evening_visit": {},
    # sensor raised (injected), fused sensor+vision, downgraded to sensor, sensor cleared (injected)
    "station_overflow_fusion": {("bin.full", "raised"): 3, ("bin.full", "cleared"): 1},
    "station_overflow_vision_only": {("waste.overflow", "raised"): 1, ("waste.overflow", "cleared"): 1},
}
ALERTING = ("fire_lane.", "waste.", "bin.full")


@pytest.mark.parametrize("name", sorted(SCENE_EVENTS))
def test_scene(name, detector):
    run = scenes.run_scene(scenes.load_scene(SCENES / name), detector)
    result = scenes.score(run)
    assert result["problems"] == [], result
    got: dict = {}
    for e in run.events:
        if e.kind.startswith(ALERTING):
            key = (e.kind, e.payload.get("state"))
            got[key] = got.get(key, 0) + 1
    assert got == SCENE_EVENTS[name]
    for e in run.events:  # every raising event carries a decodable evidence picture
        if e.kind.startswith(("fire_lane.", "waste.")) and e.payload.get("state") in ("blocked", "raised"):
            assert e.media, e
            img = cv2.imdecode(np.frombuffer(run.media[e.media[0].media_id], np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.shape[1] == 640
    if name == "plaza_people_only":
        assert run.labels.get("person", 0) >= 4  # people were seen, and ignored
        assert not {"car", "truck", "bus", "motorcycle", "bicycle"} & set(run.labels)
    if name == "lane_bicycles_passerby":
        assert run.labels.get("person", 0) >= 5
        assert run.health["fire_lane.lane"]["held_occluded"] >= 3  # the bicycles were hidden for a while
    if name == "lane_bicycles_dusk":
        assert run.health["fire_lane.lane"]["held_appearance"] >= 3  # the detector lost them in the dark
    if name == "lane_clutter_bags":
        (b,) = [e for e in run.events if e.kind == "fire_lane.blocked"]
        assert b.payload["object"] == "unknown" and "bicycle" not in run.labels
    if name == "station_night_drop":
        (drop,) = [e for e in run.events if e.kind == "waste.off_hours_drop"]
        assert drop.payload["window"] == "07:00-09:00,18:00-21:00" and len(drop.media) == 2  # person + left behind
    if name == "station_overflow_fusion":
        evidence = [e.payload["evidence"] for e in run.events if e.kind == "bin.full"]
        assert evidence == [["sensor"], ["sensor", "vision"], ["sensor"], ["sensor"]]
        (alert,) = run.alerts
        assert alert["kind"] == "bin.full" and alert["state"] == "cleared"


def test_edge_eval_prints_precision_recall_per_kind(capsys, detector, tmp_path):
    from edge.cli import main

    rc = main(["eval", str(SCENES / "lane_bicycles"), "--json", "--evidence", str(tmp_path / "ev")])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["passed"] == report["total"] == 1
    assert report["kinds"]["fire_lane.blocked"] == {"tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0}
    assert report["kinds"]["fire_lane.blocked (cleared)"]["recall"] == 1.0
    assert len(list((tmp_path / "ev" / "lane_bicycles").glob("*.jpg"))) == 2


def test_edge_eval_reports_a_wrong_expectation_as_a_miss(capsys, detector, tmp_path):
    """The same real plaza frames, labelled (wrongly) as a blockage: eval must say recall 0 and exit 1."""
    from edge.cli import main

    scene = (SCENES / "plaza_people_only" / "scene.yaml").read_text()
    scene = scene.replace("../../data/", str(DATA) + "/").replace(
        "expect: []", "expect:\n  - {alert: fire_lane.blocked, zone: plaza, raised_s: [100, 200]}")
    scene = scene.replace("for_s: 240", "for_s: 60")
    (tmp_path / "mislabelled").mkdir()
    (tmp_path / "mislabelled" / "scene.yaml").write_text(scene)
    rc = main(["eval", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "fire_lane.blocked                  0   0   1         -    0.00" in out
    assert "FAIL plaza_people_only" in out and "not found" in out


def test_scene_errors_are_clear(tmp_path, capsys):
    from edge.cli import main

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "scene.yaml").write_text("images: {a: {file: nope.jpg}}\ntimeline: [{image: b, for_s: 1}]\n"
                                                    "expect: []\n")
    assert main(["eval", str(tmp_path)]) == 2
    assert "timeline[0]: unknown image 'b'" in capsys.readouterr().err
    (tmp_path / "broken" / "scene.yaml").write_text("images: {a: {file: nope.jpg}}\ntimeline: [{image: a, for_s: 1}]\n"
                                                    "expect: []\nzones: [{id: z, type: fire_lane, polygon: "
                                                    "[[0, 0], [2, 0], [0, 1]]}]\n")
    assert main(["eval", str(tmp_path)]) == 2
    assert "outside 0..1" in capsys.readouterr().err


def test_lane_reference_cli_checks_the_zone_is_clear(tmp_path, capsys, detector):
    from edge.cli import main
    from edge.analytics.clutter import load_reference

    cfg = tmp_path / "edge.yaml"
    cfg.write_text(lane_config(tmp_path) + f"""  - id: ground
    camera: cam-file
    type: keep_clear_ground
    polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]
""".replace("zones:\n", "zones:\n") + "")
    text = cfg.read_text().replace("zones:", f"""  - id: cam-file
    url: file://{DATA / 'intel_worker_zone.mp4'}
    width: 480
    height: 270
zones:""")
    cfg.write_text(text)
    bikes, empty = DATA / "opencv_leuvenB_lane_bicycles.jpg", DATA / "opencv_leuvenA_lane_empty.jpg"
    assert main(["lane-reference", str(bikes), "--camera", "cam-lane", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "zone lane-3 is not clear: bicycle" in err and "not saved" in err
    assert main(["lane-reference", str(empty), "--camera", "cam-lane", "--config", str(cfg), "--json",
                 "--by", "installer zhang"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["camera"] == "cam-lane" and out["by"] == "installer zhang" and out["warnings"] == []
    # a camera id: one frame is grabbed from the camera (here a looped video file source)
    assert main(["lane-reference", "cam-file", "--config", str(cfg), "--no-check"]) == 0
    capsys.readouterr()
    assert main(["lane-reference", "nope", "--config", str(cfg)]) == 2
    assert "neither an image file nor a camera id" in capsys.readouterr().err
    store = Store(tmp_path / "data" / "edge.db")
    try:
        assert load_reference(store, "cam-lane")["by"] == "installer zhang"
        assert load_reference(store, "cam-file")["frame_size"] == [480, 270]
    finally:
        store.close()
