"""The real capture path against the camera simulator: HTTP MJPEG / JPEG snapshot / file sources through the
gateway's camera components, a stall -> camera.offline, resume and reconnect -> camera.online, broken JPEGs
counted, newest-frame-wins with a slow consumer, and offline timing on the injected clock."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from drivers.cameras.capture import CaptureWorker
from drivers.cameras.sources import open_source
from drivers.cameras.sources.opencv import FileSource
from edge.clock import FakeClock, SystemClock
from edge.config import load_config_text
from edge.config.cameras import CameraConfig
from edge.runtime import Gateway
from simulators.cameras.mjpeg import MjpegCamera
from simulators.cameras.scene import Scene, read_stamp

DATA = Path(__file__).parent / "data"
CLIP = DATA / "intel_worker_zone.mp4"  # 480x270, 16.7 fps, 4.3 s: a worker walking across a warehouse floor
SHORT_CLIP = DATA / "intel_person_bicycle_car.mp4"  # 480x270, 12.5 fps, 41 frames


@pytest.fixture(scope="module")
def clip_scene():
    return Scene.from_video(CLIP)


@pytest.fixture
def sim(clip_scene):
    cam = MjpegCamera(clip_scene).start()
    yield cam
    cam.stop()


def gateway_config(tmp_path, cameras_yaml: str):
    return load_config_text(f"""gateway: {{id: gw-cam, compound_id: cp-t, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}, commit_interval_ms: 20}}
web: {{enabled: false}}
cameras:
{cameras_yaml}""")


def camera_yaml(cid: str, url: str, **extra) -> str:
    # capture tests run without the detector (model: none) unless they ask for it: they test the stream
    # handling, and 120 ms inferences would only slow them down on a 2-core machine
    opts = {"offline_after_s": 1.0, "read_timeout_s": 0.5, "open_timeout_s": 2.0, "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.8, "detect_fps": 5, "model": "none"}
    opts.update(extra)
    lines = [f"  - id: {cid}", f"    url: {url}"] + [f"    {k}: {v}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"


async def wait_for(pred, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def camera_events(ctx, kind):
    return list(reversed(ctx.store.query_events(kind=kind)))  # oldest first


async def test_mjpeg_stall_goes_offline_and_comes_back_online(tmp_path, sim):
    gw = Gateway(gateway_config(tmp_path, camera_yaml("cam-gate", sim.stream_url)))
    ctx = await gw.start()
    results = []
    ctx.services["vision"].add_listener(results.append, "cam-gate")
    try:
        pipe = ctx.services["cameras"].pipelines["cam-gate"]
        await wait_for(lambda: len(results) >= 3, 20, "first processed frames")
        r = results[-1]
        assert r.camera == "cam-gate" and r.frame.shape == (360, 640, 3)  # resized to the configured size
        assert pipe.capture.state == "online" and pipe.health()["source"] == "mjpeg"

        # wedged camera: the TCP connection stays open, no bytes come
        sim.stall()
        t_stall = time.monotonic()
        await wait_for(lambda: camera_events(ctx, "camera.offline"), 6, "camera.offline")
        took = time.monotonic() - t_stall
        assert 0.9 <= took <= 4.0, took
        off = camera_events(ctx, "camera.offline")[0]
        assert off.source == "cam-gate" and off.payload["camera"] == "cam-gate"
        assert "no data" in off.payload["reason"] or "stalled" in off.payload["reason"]
        h = pipe.health()
        assert h["camera_state"] == "offline" and h["reconnects"] >= 1
        n_offline = len(results)

        sim.resume()
        await wait_for(lambda: camera_events(ctx, "camera.online"), 6, "camera.online")
        on = camera_events(ctx, "camera.online")[0]
        assert on.payload["offline_s"] >= 0.9
        await wait_for(lambda: len(results) >= n_offline + 3, 10, "frames after reconnect")

        # a dropped connection is reconnected before offline_after_s: no second offline event
        before = pipe.capture.reconnects
        sim.drop()
        await wait_for(lambda: pipe.capture.reconnects > before, 5, "reconnect after drop")
        n = len(results)
        await wait_for(lambda: len(results) >= n + 3, 10, "frames after drop")
        assert len(camera_events(ctx, "camera.offline")) == 1
        states = ctx.services["cameras"].states()["cam-gate"]
        assert states["online"] and states["reconnects"] >= 2 and states["fps_in"] > 0
        jpeg = ctx.services["cameras"].snapshot_jpeg("cam-gate")
        assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 5000
        assert ctx.store.devices()[0]["state"] == "online"
    finally:
        await gw.stop()


async def test_camera_gone_then_back_with_backoff_and_file_camera_alongside(tmp_path, sim):
    yaml = camera_yaml("cam-http", sim.stream_url) + camera_yaml("cam-file", f"file://{SHORT_CLIP}",
                                                                  model="default")
    gw = Gateway(gateway_config(tmp_path, yaml))
    ctx = await gw.start()
    seen: dict[str, int] = {}
    ctx.services["vision"].add_listener(lambda r: seen.__setitem__(r.camera, seen.get(r.camera, 0) + 1))
    try:
        mgr = ctx.services["cameras"]
        await wait_for(lambda: seen.get("cam-http", 0) >= 2 and seen.get("cam-file", 0) >= 2, 20,
                       "frames from both cameras")
        sim.stop()  # camera powered off: connections refused
        await wait_for(lambda: camera_events(ctx, "camera.offline"), 6, "camera.offline")
        off = camera_events(ctx, "camera.offline")[0]
        assert off.source == "cam-http"
        assert "refused" in mgr.states()["cam-http"]["last_error"].lower()
        sessions_at_offline = mgr.pipelines["cam-http"].capture.sessions
        await asyncio.sleep(2.0)
        # backoff doubles from 0.1 s up to 0.8 s: a handful of attempts in 2 s, not a busy loop
        attempts = mgr.pipelines["cam-http"].capture.sessions - sessions_at_offline
        assert 1 <= attempts <= 6, attempts
        sim.start()  # back on the same port
        await wait_for(lambda: camera_events(ctx, "camera.online"), 6, "camera.online")
        n = seen["cam-http"]
        await wait_for(lambda: seen["cam-http"] >= n + 2, 10, "frames after camera came back")
        # the file camera never noticed, and loops the 3.3 s clip
        assert mgr.states()["cam-file"]["online"] and mgr.states()["cam-file"]["reconnects"] == 0
        assert [e.source for e in camera_events(ctx, "camera.offline")] == ["cam-http"]
        health = gw.supervisor.health()
        assert health["camera.cam-file"]["state"] == "running" and health["camera.cam-file"]["source"] == "file"
        # the file camera runs the real detector: a cyclist and a car cross the parking lot in the clip
        assert health["camera.cam-file"]["detector_runs"] >= 1 and health["camera.cam-file"]["model_error"] is None
        assert health["camera.cam-http"]["detector_runs"] == 0 and health["camera.cam-http"]["model"] == "none"
    finally:
        await gw.stop()


async def test_snapshot_url_camera_and_credentials(tmp_path, clip_scene):
    with MjpegCamera(clip_scene, username="admin", password="p@ss#1") as sim:
        yaml = (camera_yaml("cam-snap", sim.snapshot_url, username="admin", password='"p@ss#1"',
                            snapshot_url=sim.snapshot_url)
                + camera_yaml("cam-wrong", sim.stream_url, username="admin", password="nope")
                + camera_yaml("cam-nopw", sim.stream_url, username="admin", password="{env: EDGE_TEST_UNSET_PW}"))
        gw = Gateway(gateway_config(tmp_path, yaml))
        ctx = await gw.start()
        seen = []
        ctx.services["vision"].add_listener(seen.append, "cam-snap")
        try:
            await wait_for(lambda: len(seen) >= 3, 20, "frames from the snapshot camera")
            mgr = ctx.services["cameras"]
            assert mgr.states()["cam-snap"]["source"] == "snapshot"
            served = sim.snapshots_served
            direct = await asyncio.to_thread(mgr.snapshot_jpeg, "cam-snap", from_camera=True)
            assert direct[:2] == b"\xff\xd8" and sim.snapshots_served > served  # fetched from the camera
            with pytest.raises(KeyError, match="unknown camera"):
                mgr.snapshot_jpeg("nope")
            await wait_for(lambda: camera_events(ctx, "camera.offline"), 6, "wrong password -> offline")
            await wait_for(lambda: len(camera_events(ctx, "camera.offline")) == 2, 6, "both offline")
            off = {e.source: e for e in camera_events(ctx, "camera.offline")}
            assert "401" in off["cam-wrong"].payload["reason"]
            assert "username/password" in off["cam-wrong"].payload["reason"]
            # a missing password variable is a clear, retried error, not a crashed component
            assert "EDGE_TEST_UNSET_PW is not set" in off["cam-nopw"].payload["reason"]
            assert gw.supervisor.health()["camera.cam-nopw"]["restarts"] == 0
            from drivers.cameras import CameraUnavailable

            with pytest.raises(CameraUnavailable, match="401"):
                mgr.snapshot_jpeg("cam-wrong")
        finally:
            await gw.stop()


async def test_broken_jpegs_are_counted_and_the_stream_goes_on(clip_scene):
    with MjpegCamera(clip_scene) as sim:
        sim.broken_every = 3
        cfg = CameraConfig(id="c", url=sim.stream_url, read_timeout_s=1)
        worker = CaptureWorker("c", lambda: open_source(cfg), offline_after_s=2, read_timeout_s=1)
        worker.slot.always = True  # decode every part
        task = asyncio.create_task(worker.supervise(SystemClock()))
        try:
            await wait_for(lambda: worker.grabbed >= 30, 10, "30 parts")
            h = worker.health()
            assert h["decode_errors"] >= 8 and h["decoded"] >= 15, h
            assert h["reconnects"] == 0 and h["camera_state"] == "online"
            assert "undecodable" in h["last_decode_error"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_newest_frame_wins_with_a_slow_consumer():
    still = Scene.from_video(SHORT_CLIP, max_frames=1).frames[0]
    scene = Scene.scripted([(still, 1.0)], fps=25, stamp=True)
    with MjpegCamera(scene) as sim:
        cfg = CameraConfig(id="c", url=sim.stream_url)
        worker = CaptureWorker("c", lambda: open_source(cfg))
        task = asyncio.create_task(worker.supervise(SystemClock()))
        try:
            got = []
            for _ in range(5):
                frame = await asyncio.wait_for(worker.slot.get(), 10)
                got.append((read_stamp(frame.image), sim.frame_number))
                await asyncio.sleep(0.4)  # a consumer much slower than 25 fps
            for number, latest in got:
                assert latest - number <= 3, got  # what it gets is (nearly) live, never an old queued frame
            gaps = [b[0] - a[0] for a, b in zip(got, got[1:])]
            assert min(gaps) >= 7, gaps  # ~10 frames at 25 fps passed unseen between takes
            assert worker.skipped >= 30 and worker.decoded <= len(got) + 2  # dropped undecoded, not queued

            # decoding everything (snapshot mode) still keeps exactly one frame: the newest overwrites
            worker.slot.always = True
            await asyncio.sleep(0.5)
            frame = await asyncio.wait_for(worker.slot.get(), 5)
            assert sim.frame_number - read_stamp(frame.image) <= 3
            assert worker.slot.replaced >= 5
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_file_source_loops_and_plays_at_its_frame_rate():
    src = FileSource(SHORT_CLIP, realtime=False)
    info = src.open()
    assert (info.width, info.height, info.fps) == (480, 270, 12.5)
    for _ in range(100):
        src.grab()
    assert src.loops == 2  # 41 frames per loop
    assert src.retrieve().shape == (270, 480, 3)
    src.close()

    paced = FileSource(SHORT_CLIP)
    paced.open()
    t0 = time.monotonic()
    for _ in range(14):
        paced.grab()
    assert 0.9 <= time.monotonic() - t0 <= 1.6  # 13 intervals at 12.5 fps = 1.04 s
    paced.close()


async def test_offline_after_a_minute_on_the_injected_clock(tmp_path, clip_scene):
    """offline_after_s: 60 is measured on ctx.clock: a FakeClock makes the minute pass in a few real seconds."""
    with MjpegCamera(clip_scene) as sim:
        clock = FakeClock()
        cfg = gateway_config(tmp_path, camera_yaml("cam-slow", sim.stream_url, offline_after_s=60,
                                                   read_timeout_s=5, open_timeout_s=5, reconnect_min_s=1,
                                                   reconnect_max_s=10))
        gw = Gateway(cfg, clock=clock)
        ctx = await gw.start()
        seen = []
        ctx.services["vision"].add_listener(seen.append, "cam-slow")

        async def run_clock(fake_s: float, until, step: float = 0.25, real_s: float = 0.005):
            """Advance the fake clock in steps, giving the capture threads real time between steps."""
            for _ in range(int(fake_s / step)):
                await clock.advance(step)
                await asyncio.sleep(real_s)
                if until():
                    return True
            return False

        try:
            # start-up (model load, first connection) takes real seconds: let fake time crawl meanwhile
            assert await run_clock(40, lambda: len(seen) >= 2, step=0.05, real_s=0.02)
            sim.stall()
            t_stall = clock.time()
            assert await run_clock(90, lambda: camera_events(ctx, "camera.offline"))
            await asyncio.sleep(0.1)
            off = camera_events(ctx, "camera.offline")[0]
            assert off.ts_ms / 1000 - t_stall == pytest.approx(60, abs=2)
            sim.resume()
            assert await run_clock(60, lambda: camera_events(ctx, "camera.online"))
        finally:
            sim.resume()
            stop = asyncio.create_task(gw.stop())
            while not stop.done():
                await clock.advance(0.5)
                await asyncio.sleep(0.01)
