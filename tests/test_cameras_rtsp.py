"""RTSP through OpenCV's FFmpeg backend against the gst-rtsp-server simulator (H.264 over RTSP/TCP): frames
into the pipeline, a stall -> camera.offline -> camera.online, and the server going away and coming back."""
from __future__ import annotations

import time

import pytest

from simulators.cameras.rtsp import RtspCamera, rtsp_available
from tests.test_cameras_capture import CLIP, camera_events, camera_yaml, gateway_config, wait_for

OK, WHY = rtsp_available()
pytestmark = pytest.mark.skipif(not OK, reason=f"RTSP simulator unavailable: {WHY}")


@pytest.fixture
def rtsp_cam():
    cam = RtspCamera(video=CLIP).start()
    yield cam
    cam.stop()


async def test_rtsp_frames_stall_and_server_restart(tmp_path, rtsp_cam):
    from edge.runtime import Gateway

    gw = Gateway(gateway_config(tmp_path, camera_yaml("cam-rtsp", rtsp_cam.url, open_timeout_s=3)))
    ctx = await gw.start()
    results = []
    ctx.services["vision"].add_listener(results.append, "cam-rtsp")
    try:
        pipe = ctx.services["cameras"].pipelines["cam-rtsp"]
        await wait_for(lambda: len(results) >= 3, 25, "frames over RTSP")
        h = pipe.health()
        assert h["source"] == "rtsp" and (h["source_width"], h["source_height"]) == (480, 270)
        assert results[-1].frame.shape == (360, 640, 3)

        rtsp_cam.stall(3)  # RTSP session up, no RTP packets
        t0 = time.monotonic()
        await wait_for(lambda: camera_events(ctx, "camera.offline"), 8, "camera.offline")
        assert time.monotonic() - t0 <= 4.0
        await wait_for(lambda: camera_events(ctx, "camera.online"), 15, "camera.online after the stall")
        n = len(results)
        await wait_for(lambda: len(results) >= n + 3, 15, "frames after the stall")

        rtsp_cam.stop()  # server gone
        await wait_for(lambda: len(camera_events(ctx, "camera.offline")) == 2, 8, "second camera.offline")
        assert pipe.capture.last_error
        rtsp_cam.start()
        await wait_for(lambda: len(camera_events(ctx, "camera.online")) == 2, 20, "camera.online after restart")
        n = len(results)
        await wait_for(lambda: len(results) >= n + 3, 15, "frames after the restart")
        assert pipe.health()["zombie_threads"] == 0
    finally:
        await gw.stop()


def test_rtsp_probe_reports_size_and_rate(rtsp_cam):
    from drivers.cameras.probe import probe_camera
    from edge.config.cameras import CameraConfig

    res = probe_camera(CameraConfig(id="p", url=rtsp_cam.url), timeout_s=10)
    assert res["ok"], res
    d = res["detail"]
    assert (d["width"], d["height"], d["source"]) == (480, 270, "rtsp")
    assert d["fps"] == pytest.approx(16.7, rel=0.25)  # measured after the post-connect burst
