"""Cameras: capture with a watchdog, motion gating, detector + tracker, one FrameResult per processed frame.

build_components() creates the FrameHub (ctx.services["vision"]) if absent, one CameraPipeline component per
configured camera, and ctx.services["cameras"] (CameraManager: snapshots and states for the console, alerts
and `edge doctor`). See docs in drivers/cameras/sources/opencv.py for RTSP URL conventions.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2

from edge.vision import FrameHub

from .detectors import DetectorPool
from .pipeline import CameraPipeline


class CameraUnavailable(LookupError):
    """No frame to show yet (camera connecting or never reached)."""


class CameraManager:
    """The "cameras" service."""

    def __init__(self, pipelines: list[CameraPipeline], detectors: DetectorPool, executor: ThreadPoolExecutor):
        self.pipelines = {p.cam.id: p for p in pipelines}
        self.detectors = detectors
        self.executor = executor
        self._encode_lock = threading.Lock()

    def _pipeline(self, camera_id: str) -> CameraPipeline:
        try:
            return self.pipelines[camera_id]
        except KeyError:
            raise KeyError(f"unknown camera {camera_id!r}; configured: {', '.join(sorted(self.pipelines))}") \
                from None

    def snapshot_jpeg(self, camera_id: str, quality: int = 85, from_camera: bool = False) -> bytes:
        """The newest decoded frame at camera resolution, as JPEG. Blocking (a few ms): call it from a thread
        in async code. KeyError for an unknown camera, CameraUnavailable when no frame has arrived yet.

        from_camera=True with a configured snapshot_url fetches the camera's own full-resolution JPEG (evidence
        images from a sub-stream camera); if that fails, the newest frame is returned instead."""
        p = self._pipeline(camera_id)
        if from_camera and p.cam.snapshot_url:
            from .sources import SourceError, credentials
            from .sources.http import HttpSource

            user, password = credentials(p.cam)
            try:
                return HttpSource(p.cam.snapshot_url, user, password, p.cam.open_timeout_s,
                                  p.cam.read_timeout_s).fetch_once()
            except SourceError as e:
                p.last_error = f"snapshot_url: {e}"
        frame = p.capture.slot.latest()
        if frame is None:
            state = p.capture.state
            raise CameraUnavailable(f"camera {camera_id!r} has no frame yet (state {state}"
                                    + (f", last error: {p.capture.last_error}" if p.capture.last_error else "") + ")")
        ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise CameraUnavailable(f"camera {camera_id!r}: JPEG encoding failed")
        return buf.tobytes()

    def states(self) -> dict[str, dict]:
        out = {}
        for cid, p in self.pipelines.items():
            c = p.capture
            clock = p._clock
            age = (clock.monotonic() - c.last_frame_at) if (clock is not None and c.last_frame_at is not None) \
                else None
            out[cid] = {
                "name": p.cam.name or cid, "state": c.state, "online": c.state == "online",
                "last_frame_age_s": round(age, 2) if age is not None else None,
                "fps_in": round(c.fps_in.rate, 2), "fps_out": round(p.fps_out.rate, 2),
                "width": p.cam.width, "height": p.cam.height,
                "source": c.info.kind if c.info else None, "reconnects": c.reconnects,
                "last_error": c.last_error,
            }
        return out


def build_components(config, ctx) -> list:
    ctx.services.setdefault("vision", FrameHub())
    if not config.cameras:
        return []
    hub = ctx.services["vision"]
    detectors = DetectorPool(threads=config.models.threads, extra_dirs=config.models.extra_dirs,
                             default=config.models.default)
    # Inference and motion for all cameras share a small pool (one worker per core): enough to use the CPU,
    # without more concurrent inferences than cores to run them.
    executor = ThreadPoolExecutor(max_workers=max(1, min(len(config.cameras), os.cpu_count() or 1)),
                                  thread_name_prefix="vision")
    pipelines = [CameraPipeline(cam, detectors=detectors, executor=executor, hub=hub) for cam in config.cameras]
    ctx.services["cameras"] = CameraManager(pipelines, detectors, executor)
    return pipelines
