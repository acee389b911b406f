"""RTSP cameras and local video files through OpenCV's FFmpeg backend.

RTSP: TCP transport (UDP loses packets behind NAT and on Wi-Fi bridges, which smears H.264 frames), open and
read timeouts through CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC (OpenCV's FFmpeg interrupt
callback enforces them, so a dead camera cannot block a read forever).

Usual sub-stream URLs (the sub-stream, 640x360..704x576, is what a 5 fps detector needs; the main stream
costs 4-8x more to decode):
  Hikvision  rtsp://HOST:554/Streaming/Channels/102        (101 = main stream, 202 = channel 2 sub-stream)
  Dahua      rtsp://HOST:554/cam/realmonitor?channel=1&subtype=1   (subtype=0 = main stream)
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from . import Source, SourceError, SourceInfo, redact

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
#: FFmpeg options OpenCV passes to avformat_open_input ("key;value|key;value"); read at every open.
FFMPEG_OPTIONS = "rtsp_transport;tcp"
_env_lock = threading.Lock()


def _ensure_ffmpeg_options() -> None:
    """Set the FFmpeg capture options once, unless the installer set their own in the environment."""
    with _env_lock:
        if FFMPEG_OPTIONS_ENV not in os.environ:
            os.environ[FFMPEG_OPTIONS_ENV] = FFMPEG_OPTIONS


def _info(cap: cv2.VideoCapture, kind: str) -> SourceInfo:
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    return SourceInfo(kind, w, h, round(fps, 3) if 0 < fps < 500 else None)


class RtspSource(Source):
    kind = "rtsp"

    def __init__(self, url: str, open_timeout_s: float, read_timeout_s: float):
        self.url = url
        self.open_timeout_ms = int(open_timeout_s * 1000)
        self.read_timeout_ms = int(read_timeout_s * 1000)
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> SourceInfo:
        _ensure_ffmpeg_options()
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms,
        ])
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {redact(self.url)} (wrong URL or credentials, camera unreachable, "
                              f"or no answer within {self.open_timeout_ms / 1000:g} s)")
        self.cap = cap
        return _info(cap, self.kind)

    def grab(self) -> None:
        if self.interrupted:
            raise SourceError("interrupted by the watchdog")
        t0 = time.monotonic()
        ok = self.cap is not None and self.cap.grab()
        # After its read timeout fires, OpenCV's grab() may still return True with a frame drained from the
        # decoder (measured: twice per stall before it reports failure). A live camera never takes a whole
        # read timeout per frame, so such a grab is treated as the timeout it is.
        if not ok or time.monotonic() - t0 >= 0.9 * self.read_timeout_ms / 1000:
            raise SourceError(f"stream ended or no frame within {self.read_timeout_ms / 1000:g} s")

    def retrieve(self) -> np.ndarray | None:
        ok, img = self.cap.retrieve() if self.cap is not None else (False, None)
        return img if ok and img is not None and img.size else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class FileSource(Source):
    """A local video played at its own frame rate and looped: the demo camera and the test camera.

    `realtime=False` reads as fast as possible (benchmarks measure decode cost without waiting).
    """

    kind = "file"

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = True):
        self.path = str(path)
        self.loop = loop
        self.realtime = realtime
        self.cap: cv2.VideoCapture | None = None
        self.period = 0.1
        self.loops = 0
        self._next = 0.0

    def _open_cap(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video file {self.path}")
        return cap

    def open(self) -> SourceInfo:
        if not Path(self.path).is_file():
            raise SourceError(f"no such video file: {self.path}")
        self.cap = self._open_cap()
        info = _info(self.cap, self.kind)
        self.period = 1.0 / info.fps if info.fps else 0.1
        self._next = time.monotonic()
        return info

    def _pace(self) -> None:
        # Sleep in short slices so the watchdog's interrupt() is noticed quickly.
        while True:
            if self.interrupted:
                raise SourceError("interrupted by the watchdog")
            delay = self._next - time.monotonic()
            if delay <= 0:
                break
            time.sleep(min(delay, 0.05))
        now = time.monotonic()
        self._next = max(self._next + self.period, now - self.period)

    def grab(self) -> None:
        if self.cap is None:
            raise SourceError("not open")
        if self.realtime:
            self._pace()
        if self.cap.grab():
            return
        if not self.loop:
            raise SourceError(f"end of {self.path}")
        # Reopening is more reliable than seeking to frame 0 across containers and codecs.
        self.cap.release()
        self.cap = self._open_cap()
        self.loops += 1
        if not self.cap.grab():
            raise SourceError(f"{self.path} has no decodable frames")

    def retrieve(self) -> np.ndarray | None:
        ok, img = self.cap.retrieve() if self.cap is not None else (False, None)
        return img if ok and img is not None and img.size else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
