"""Source details: URL credentials, file URLs, MJPEG parts without Content-Length, truncated JPEGs."""
from __future__ import annotations

import cv2
import pytest

from drivers.cameras.sources import SourceError, credentials, file_path, open_source, redact, with_credentials
from drivers.cameras.sources.http import HttpSource, decode_jpeg
from edge.config.cameras import CameraConfig
from simulators.cameras.mjpeg import MjpegCamera
from simulators.cameras.scene import Scene, read_stamp
from tests.test_cameras_capture import SHORT_CLIP


def test_credentials_are_encoded_into_rtsp_urls_and_redacted_everywhere_else():
    url = with_credentials("rtsp://192.168.1.64:554/Streaming/Channels/102", "admin", "p@ss:#1/")
    assert url == "rtsp://admin:p%40ss%3A%231%2F@192.168.1.64:554/Streaming/Channels/102"
    assert redact(url) == "rtsp://192.168.1.64:554/Streaming/Channels/102"
    dahua = "rtsp://u:pw@10.0.0.9/cam/realmonitor?channel=1&subtype=1"
    assert redact(dahua) == "rtsp://10.0.0.9/cam/realmonitor?channel=1&subtype=1"
    cfg = CameraConfig(id="c", url=dahua)
    assert credentials(cfg) == ("u", "pw")
    cfg = CameraConfig(id="c", url=dahua, username="admin", password={"value": "s3cret"})
    assert credentials(cfg) == ("admin", "s3cret")
    assert "s3cret" in open_source(cfg).url and "s3cret" not in repr(cfg)


def test_file_urls():
    assert file_path("file:///srv/demo/clip.mp4") == "/srv/demo/clip.mp4"
    assert file_path("file://tests/data/x%20y.mp4") == "tests/data/x y.mp4"
    src = open_source(CameraConfig(id="c", url="file:///no/such/clip.mp4"))
    with pytest.raises(SourceError, match="no such video file"):
        src.open()


def test_mjpeg_without_content_length():
    scene = Scene.from_video(SHORT_CLIP, max_frames=5, stamp=True)
    with MjpegCamera(scene, content_length=False) as sim:
        src = HttpSource(sim.stream_url, None, None, 2, 2)
        src.open()
        numbers = []
        for _ in range(6):
            src.grab()
            img = src.retrieve()
            assert img is not None and img.shape == (270, 480, 3)
            numbers.append(read_stamp(img))
        src.close()
    assert numbers == sorted(numbers) and len(set(numbers)) == 6


def test_truncated_or_garbage_jpeg_is_rejected():
    img = cv2.imread(str(SHORT_CLIP.parent / "sam_truck.jpg"))
    ok, buf = cv2.imencode(".jpg", img)
    data = buf.tobytes()
    assert decode_jpeg(data) is not None
    assert decode_jpeg(data[: len(data) // 2]) is None  # would decode half-grey; rejected instead
    assert decode_jpeg(b"\xff\xd8garbage\xff\xd9") is None
    assert decode_jpeg(b"") is None and decode_jpeg(None) is None
