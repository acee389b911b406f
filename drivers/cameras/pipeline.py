"""One camera as one Component: capture -> sample to detect_fps -> resize -> motion gate -> detector -> tracker
-> one FrameResult per processed frame on the FrameHub.

The heavy steps (resize, motion, inference, tracking) run in a shared worker pool so one camera's inference
never blocks the event loop or the other cameras' state machines; one camera's frames are processed in order,
one at a time.

Gated frames (no motion): the detector does not run. The scene is unchanged since the last detector run, so
the tracker is fed that run's detections again: tracks stay alive with their ids, last_seen advances and
stationary_s keeps counting (the tracker would otherwise end every track after max_missed_s, and a parked car
would get a new id at each re-check). FrameResult.detections is empty and detected=False on those frames.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Callable

import cv2
import numpy as np

from edge.config.cameras import CameraConfig
from edge.runtime.component import Component
from edge.vision import FrameHub, FrameResult

from .capture import CaptureWorker, Frame, RateMeter
from .detectors import DetectorPool
from .motion import MotionGate
from .sources import Source, open_source, redact
from .tracks import TrackView, view

log = logging.getLogger("drivers.cameras.pipeline")


def resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """BGR at exactly width x height (grey or BGRA frames from odd cameras are converted, not rejected)."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    interp = cv2.INTER_AREA if w > width else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def _default_tracker():
    from models.tracker import Tracker

    return Tracker()


class CameraPipeline(Component):
    critical = False

    def __init__(self, cam: CameraConfig, *, detectors: DetectorPool | None, executor: Executor | None = None,
                 hub: FrameHub | None = None, source_factory: Callable[[], Source] | None = None,
                 tracker_factory: Callable | None = None):
        self.cam = cam
        self.name = f"camera.{cam.id}"
        self.detectors = detectors
        self.executor = executor
        self.hub = hub
        self.source_factory = source_factory or (lambda: open_source(cam))
        self.tracker_factory = tracker_factory or _default_tracker
        self.gate = MotionGate.from_config(cam.motion)
        self.tracker = None
        self.capture = self._new_capture(None)
        self.processed = 0
        self.detector_runs = 0
        self.detector_errors = 0
        self.process_errors = 0
        self.moved_frames = 0
        self.last_error: str | None = None
        self.last_result: FrameResult | None = None
        self.fps_out = RateMeter()
        self._clock = None
        self._session = 0
        self._last_dets: list = []
        self._detect_ms = 0.0
        self._persist_tasks: set[asyncio.Task] = set()

    def _new_capture(self, on_state) -> CaptureWorker:
        c = self.cam
        return CaptureWorker(c.id, self.source_factory, offline_after_s=c.offline_after_s,
                             open_timeout_s=c.open_timeout_s, read_timeout_s=c.read_timeout_s,
                             backoff_min_s=c.reconnect_min_s, backoff_max_s=c.reconnect_max_s, on_state=on_state)

    # ---- component ----------------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        self._clock = ctx.clock
        hub = self.hub or ctx.services.setdefault("vision", FrameHub())
        self.hub = hub
        previous = await self._persisted_state(ctx)
        self.capture = self._new_capture(lambda new, old, d: self._on_state(ctx, new, old, d, previous))
        self.gate.reset()
        self.tracker = self.tracker_factory()
        self._last_dets = []
        tasks = [asyncio.create_task(self.capture.supervise(ctx.clock), name=f"{self.name}.capture"),
                 asyncio.create_task(self._process_loop(ctx, hub), name=f"{self.name}.process")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # re-raise: the supervisor restarts the camera with backoff
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _persisted_state(self, ctx) -> str | None:
        """The state this camera had when the gateway stopped (so a camera that was offline before a restart
        gets its camera.online when it comes back)."""
        try:
            devices = await ctx.store.call(ctx.store.devices)
        except Exception:
            return None
        return next((d["state"] for d in devices if d["id"] == self.cam.id and d["type"] == "camera"), None)

    def _on_state(self, ctx, new: str, old: str, detail: dict, previous: str | None) -> None:
        info = self.capture.info
        # A camera still offline since before a restart already has its camera.offline in the store/outbox.
        still_offline = new == "offline" and old == "connecting" and previous == "offline"
        if new == "offline" and not still_offline:
            ctx.emit_new("camera.offline", self.cam.id, {
                "camera": self.cam.id, "reason": detail.get("reason"), "width": self.cam.width,
                "height": self.cam.height})
        elif new == "online" and (old == "offline" or (old == "connecting" and previous == "offline")):
            offline_s = detail.get("offline_s")
            ctx.emit_new("camera.online", self.cam.id, {
                "camera": self.cam.id, "offline_s": round(offline_s, 2) if offline_s is not None else None,
                "fps": info.fps if info else None, "width": info.width if info else None,
                "height": info.height if info else None})
        log.info("camera state", extra={"camera": self.cam.id, "state": new, "was": old, **detail})
        task = asyncio.get_running_loop().create_task(ctx.store.call(
            ctx.store.set_device_state, self.cam.id, "camera", new,
            {"url": redact(self.cam.url), "source": info.kind if info else None,
             "last_error": self.capture.last_error}, new == "online"))
        self._persist_tasks.add(task)
        task.add_done_callback(self._persist_tasks.discard)

    async def _process_loop(self, ctx, hub: FrameHub) -> None:
        clock = ctx.clock
        loop = asyncio.get_running_loop()
        period = 1.0 / self.cam.detect_fps
        next_due = clock.monotonic()
        while True:
            now = clock.monotonic()
            if next_due > now:
                await clock.sleep(next_due - now)
            frame = await self.capture.slot.get()
            mono = clock.monotonic()
            next_due = max(next_due + period, mono)
            epoch = clock.time()
            try:
                result = await loop.run_in_executor(self.executor, self.process, frame, mono, epoch)
            except Exception as e:  # a frame that breaks a step is counted and skipped, never a crash
                self.process_errors += 1
                self.last_error = f"processing: {type(e).__name__}: {e}"
                log.exception("frame processing failed", extra={"camera": self.cam.id})
                continue
            self.last_result = result
            hub.publish(result)
            self.fps_out.sample(clock.monotonic(), self.processed)

    # ---- per frame (worker thread) -----------------------------------------------------------------------
    def process(self, frame: Frame, mono: float, epoch: float) -> FrameResult:
        if self.tracker is None:
            self.tracker = self.tracker_factory()
        if frame.session != self._session:  # reconnected: the old background and detections are stale
            self._session = frame.session
            self.gate.reset()
            self._last_dets = []
        img = resize_to(frame.image, self.cam.width, self.cam.height)
        decision = self.gate.decide(img, mono)
        self.processed += 1
        self.moved_frames += decision.moved
        detected = False
        dets: list = []
        if decision.run:
            detector = self.detectors.get(self.cam.model) if self.detectors is not None else None
            if detector is not None:
                t0 = time.perf_counter()
                try:
                    dets = detector.detect(img)
                    detected = True
                    self.detector_runs += 1
                    self._last_dets = dets
                except Exception as e:
                    self.detector_errors += 1
                    self.last_error = f"detector: {type(e).__name__}: {e}"
                self._detect_ms = (time.perf_counter() - t0) * 1000
        if detected:
            tracks = self.tracker.update(dets, mono)
        elif decision.moved:
            # Motion but no detector output (model missing or failed): nothing to confirm the old tracks with.
            tracks = self.tracker.update([], mono)
        else:
            tracks = self.tracker.update(self._last_dets, mono)
        offset = epoch - mono
        return FrameResult(camera=self.cam.id, ts=epoch, frame=img, detections=dets,
                           tracks=[view(t, offset) for t in tracks], motion=round(decision.motion, 5),
                           detected=detected)

    # ---- health -----------------------------------------------------------------------------------------
    def health(self) -> dict:
        h = self.capture.health()
        if self._clock is not None:
            self.fps_out.sample(self._clock.monotonic(), self.processed)
        model = self.detectors.resolve(self.cam.model) if self.detectors else None
        tracks: list[TrackView] = self.last_result.tracks if self.last_result else []
        h.update({
            "url": redact(self.cam.url), "width": self.cam.width, "height": self.cam.height,
            "detect_fps": self.cam.detect_fps, "fps_out": round(self.fps_out.rate, 2), "processed": self.processed,
            "detector_runs": self.detector_runs, "detector_errors": self.detector_errors,
            "process_errors": self.process_errors,
            "motion_ratio": round(self.moved_frames / self.processed, 3) if self.processed else None,
            "gate": dict(self.gate.counts), "lighting_changes": self.gate.detector.lighting_changes,
            "last_detect_ms": round(self._detect_ms, 1), "model": model,
            "model_error": self.detectors.error(self.cam.model) if self.detectors else "no detector pool",
            "tracks": len(tracks), "stationary_tracks": sum(1 for t in tracks if t.stationary),
            "frames_replaced": self.capture.slot.replaced,
        })
        if self.last_error and not h.get("last_error"):
            h["last_error"] = self.last_error
        h["pipeline_error"] = self.last_error
        return h
