"""Camera simulators: HTTP MJPEG + JPEG snapshot (mjpeg.py, aiohttp in a thread) and RTSP/H.264
(rtsp.py starting rtsp_server.py on Debian's gst-rtsp-server), both serving a Scene (scene.py): a real
video file or a scripted list of images with durations. Both can stall, drop connections and come back.

    python -m simulators.cameras mjpeg --video tests/data/intel_worker_zone.mp4 --port 8081
    python -m simulators.cameras rtsp --video tests/data/intel_worker_zone.mp4 --port 8554
    python -m simulators.cameras mjpeg --image a.jpg:10 --image b.jpg:5   # scripted scene, seconds per image
"""
from .mjpeg import MjpegCamera
from .rtsp import RtspCamera, rtsp_available
from .scene import Scene

__all__ = ["MjpegCamera", "RtspCamera", "Scene", "rtsp_available"]
