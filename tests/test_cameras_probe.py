"""`edge probe camera URL` and probe_camera() (used by `edge doctor`) against the MJPEG simulator."""
from __future__ import annotations

import json
import time

import cv2
import pytest

from drivers.cameras.probe import probe_camera
from edge.config.cameras import CameraConfig
from simulators.cameras.mjpeg import MjpegCamera
from simulators.cameras.scene import Scene
from tests.test_cameras_capture import CLIP


@pytest.fixture(scope="module")
def sim():
    cam = MjpegCamera(Scene.from_video(CLIP), username="admin", password="secret").start()
    yield cam
    cam.stop()


def test_probe_ok_reports_size_and_measured_rate(sim):
    res = probe_camera(CameraConfig(id="p", url=sim.stream_url, username="admin", password="secret"))
    assert res["ok"] and res["fix"] == "", res
    d = res["detail"]
    assert (d["width"], d["height"], d["source"]) == (480, 270, "mjpeg")
    assert d["fps"] == pytest.approx(16.7, rel=0.2)
    json.dumps(res)  # `edge doctor --json` prints it as is


def test_probe_failures_say_what_to_fix(sim):
    wrong = probe_camera(CameraConfig(id="p", url=sim.stream_url, username="admin", password="guess"), timeout_s=3)
    assert not wrong["ok"] and "401" in wrong["summary"] and "username/password" in wrong["fix"]
    page = probe_camera(CameraConfig(id="p", url=sim.base_url + "/", username="admin", password="secret"))
    assert not page["ok"] and "not a stream" in page["fix"]
    refused = probe_camera(CameraConfig(id="p", url="http://127.0.0.1:9/stream"), timeout_s=3)
    assert not refused["ok"] and "port" in refused["fix"]
    missing = probe_camera(CameraConfig(id="p", url="file:///nonexistent/clip.mp4"))
    assert not missing["ok"] and "file path" in missing["fix"]


def test_probe_of_a_wedged_camera_returns_in_time(sim):
    sim.stall()
    try:
        t0 = time.monotonic()
        res = probe_camera(CameraConfig(id="p", url=sim.stream_url, username="admin", password="secret"),
                           timeout_s=1.5)
        assert time.monotonic() - t0 < 5
        assert not res["ok"] and "in time" in res["fix"]
    finally:
        sim.resume()


def test_cli_probe_camera_json_and_snapshot(sim, tmp_path, capsys, monkeypatch):
    from edge.cli import main

    monkeypatch.setenv("CAM_PW", "secret")
    snap = tmp_path / "view.jpg"
    rc = main(["probe", "camera", sim.stream_url, "--username", "admin", "--password-env", "CAM_PW",
               "--snapshot", str(snap), "--json", "--measure", "1"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] and out["detail"]["snapshot"] == str(snap)
    assert cv2.imread(str(snap)).shape == (270, 480, 3)
    assert "secret" not in json.dumps(out)

    in_url = sim.stream_url.replace("http://", "http://admin:secret@")  # credentials in the URL work too
    assert main(["probe", "camera", in_url, "--measure", "0.3"]) == 0
    assert "secret" not in capsys.readouterr().out

    rc = main(["probe", "camera", "http://admin:secret@127.0.0.1:9/x", "--timeout", "2"])
    text = capsys.readouterr().out
    assert rc == 1 and text.startswith("FAIL") and "fix:" in text and "secret" not in text
