"""Motion gate on real photos and clips: static scenes only re-check, moving objects run the detector, lighting
changes are not motion; and the pipeline's per-frame step with the real detector and tracker keeps a parked
truck's id and stationary time through the gated frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.cameras.capture import Frame
from drivers.cameras.detectors import DetectorPool
from drivers.cameras.motion import MotionGate
from drivers.cameras.pipeline import CameraPipeline
from edge.config.cameras import CameraConfig
from simulators.cameras.scene import brightness_ramp

DATA = Path(__file__).parent / "data"
FPS = 5.0


def photo(name: str, size=(640, 360)) -> np.ndarray:
    img = cv2.imread(str(DATA / name), cv2.IMREAD_COLOR)
    assert img is not None, name
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class CameraNoise:
    """Sensor noise + JPEG re-encoding: a static scene from a real camera is never bit-identical.
    A few noise fields are drawn once and cycled (drawing 700k normals per frame would dominate the test)."""

    def __init__(self, seed=7, fields=6):
        rng = np.random.default_rng(seed)
        self.fields = [rng.normal(0, 3, (360, 640, 3)).astype(np.int16) for _ in range(fields)]
        self.n = 0

    def __call__(self, img: np.ndarray) -> np.ndarray:
        field = self.fields[self.n % len(self.fields)]
        self.n += 1
        noisy = np.clip(img.astype(np.int16) + field[: img.shape[0], : img.shape[1]], 0, 255)
        ok, buf = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def clip_frames(name: str, fps: float = FPS, size=(640, 360)):
    """(t, frame) sampled from a real clip at `fps`, like the pipeline samples a camera."""
    cap = cv2.VideoCapture(str(DATA / name))
    src_fps = cap.get(cv2.CAP_PROP_FPS)
    out, i, nxt = [], 0, 0.0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        t = i / src_fps
        i += 1
        if t + 1e-9 >= nxt:
            nxt += 1 / fps
            out.append((t, cv2.resize(img, size, interpolation=cv2.INTER_AREA)))
    cap.release()
    assert out
    return out


def test_static_scene_runs_detector_only_first_and_on_rechecks():
    gate = MotionGate(recheck_s=10)
    noise = CameraNoise()
    frames = [noise(photo("sam_truck.jpg")) for _ in range(12)]
    runs = [t for i, t in enumerate(i / FPS for i in range(int(42 * FPS)))  # a quiet street for 42 s
            if gate.decide(frames[i % len(frames)], t).run]
    assert runs == pytest.approx([0.0, 10.0, 20.0, 30.0, 40.0])
    assert gate.counts["motion"] == 0 and gate.counts["recheck"] == 4


def test_moving_object_runs_detector():
    for clip in ("intel_worker_zone.mp4", "intel_person_bicycle_car.mp4"):
        gate = MotionGate(recheck_s=30)
        decisions = [gate.decide(img, t) for t, img in clip_frames(clip)]
        moved = [d for d in decisions[1:] if d.moved]
        # a person walking / a cyclist riding: every sampled frame after the first has motion
        assert len(moved) == len(decisions) - 1, (clip, [round(d.motion, 4) for d in decisions])
        assert all(d.run for d in decisions)


def test_brightness_ramp_and_exposure_steps_are_not_motion():
    noise = CameraNoise()
    for name in ("sam_truck.jpg", "opencv_leuvenA_lane_empty.jpg", "19064748793_bb942deea1_k.jpg"):
        base = photo(name)
        gate = MotionGate(recheck_s=1000)
        # dusk to noon in 20 s (much faster than real): exposure gain 0.5 -> 1.5
        for i, img in enumerate(brightness_ramp(base, 20, FPS, 0.5, 1.5)):
            d = gate.decide(noise(img), i / FPS)
            assert not d.moved, (name, i, d.motion)
        # one-frame exposure jumps (auto-exposure hunting, a cloud edge)
        for alpha, beta in ((1.3, 10), (0.6, 0), (1.5, -20), (0.7, 30)):
            gate = MotionGate(recheck_s=1000)
            gate.decide(noise(base), 0.0)
            d = gate.decide(noise(cv2.convertScaleAbs(base, alpha=alpha, beta=beta)), 0.2)
            assert not d.moved and d.motion < gate.threshold, (name, alpha, beta, d.motion)
        assert gate.counts["motion"] == 0


def test_lights_switched_on_relearns_instead_of_motion():
    day = photo("opencv_leuvenA_lane_empty.jpg")
    # night under one street lamp: brightness falls off with distance from the lamp (top left), so the change
    # to daylight is different in every part of the frame - no single gain/offset explains it
    yy, xx = np.mgrid[0:360, 0:640]
    falloff = np.clip(1.0 - np.hypot(xx - 80, yy - 40) / 350.0, 0.03, 1.0) ** 2
    night = (day * falloff[..., None]).astype(np.uint8)
    gate = MotionGate(recheck_s=1000)
    gate.decide(night, 0.0)
    d = gate.decide(day, 0.2)
    assert not d.run and d.reason == "lighting"
    assert gate.detector.lighting_changes == 1
    # the new background is the lit scene: no motion afterwards
    assert not gate.decide(day, 0.4).moved


def test_object_appearing_in_static_scene_is_motion():
    """The empty lane, then the same lane with two bicycles standing in it (real photo pair)."""
    gate = MotionGate(recheck_s=1000)
    noise = CameraNoise()
    empty, bikes = photo("opencv_leuvenA_lane_empty.jpg"), photo("opencv_leuvenB_lane_bicycles.jpg")
    for i in range(10):
        assert not gate.decide(noise(empty), i / FPS).moved or i == 0
    d = gate.decide(noise(bikes), 10 / FPS)
    assert d.moved and d.run and d.reason == "motion"


def test_disabled_gate_runs_every_frame():
    gate = MotionGate(enabled=False)
    still = photo("sam_truck.jpg")
    assert all(gate.decide(still, i / FPS).run for i in range(20))


class CountingPool(DetectorPool):
    """The real default detector, with a count of inference calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def get(self, name):
        det = super().get(name)
        if det is None:
            pytest.fail(f"default model does not load: {self.error(name)}")
        pool = self

        class Counted:
            def detect(self, img):
                pool.calls += 1
                return det.detect(img)

        return Counted()


@pytest.fixture(scope="module")
def pool():
    return CountingPool()


def run_frames(pipe: CameraPipeline, frames, epoch0=1_780_000_000.0):
    results = []
    for n, (t, img) in enumerate(frames):
        results.append(pipe.process(Frame(img, n + 1, 1, t), t, epoch0 + t))
    return results


def test_parked_truck_keeps_id_and_stationary_time_through_gated_frames(pool):
    cam = CameraConfig(id="cam-kerb", url="file:///dev/null", motion={"recheck_s": 10})
    pipe = CameraPipeline(cam, detectors=pool)
    noise = CameraNoise()
    still = [noise(photo("sam_truck.jpg")) for _ in range(12)]
    calls0 = pool.calls
    frames = [(i / FPS, still[i % 12]) for i in range(int(35 * FPS))]  # 35 s of a truck parked at a kerb
    results = run_frames(pipe, frames)
    assert pool.calls - calls0 == 4  # boot + rechecks at 10, 20, 30 s
    assert [r.ts - 1_780_000_000.0 for r in results if r.detected] == pytest.approx([0, 10, 20, 30])
    last = results[-1]
    assert not last.detected and last.detections == []
    trucks = [t for t in last.tracks if t.label in ("truck", "car")]
    assert len(trucks) == 1, last.tracks
    truck = trucks[0]
    first_ids = {t.id for t in results[0].tracks if t.label in ("truck", "car")}
    assert truck.id in first_ids  # the same id from boot to 35 s, across three re-checks
    assert truck.stationary and truck.stationary_s == pytest.approx(34.8, abs=3.5)
    assert truck.first_seen == pytest.approx(1_780_000_000.0) and truck.last_seen == pytest.approx(last.ts)
    h = pipe.health()
    assert h["detector_runs"] == 4 and h["processed"] == 175 and h["motion_ratio"] == 0.0


def test_moving_clip_runs_detector_on_every_sampled_frame(pool):
    cam = CameraConfig(id="cam-yard", url="file:///dev/null")
    pipe = CameraPipeline(cam, detectors=pool)
    frames = clip_frames("intel_worker_zone.mp4")
    calls0 = pool.calls
    results = run_frames(pipe, frames)
    assert pool.calls - calls0 == len(frames)
    assert all(r.detected for r in results)
    people = {t.id for r in results for t in r.tracks if t.label == "person"}
    assert people, "the worker is found"
    assert pipe.health()["motion_ratio"] > 0.9


def test_broken_frames_are_counted_not_fatal(pool):
    cam = CameraConfig(id="cam-x", url="file:///dev/null")
    pipe = CameraPipeline(cam, detectors=pool)
    good = photo("sam_truck.jpg")
    # a 1-pixel frame and a grey single-channel frame are odd but decodable; both must go through
    r1 = pipe.process(Frame(good[:1, :1].copy(), 1, 1, 0.0), 0.0, 1.0)
    r2 = pipe.process(Frame(cv2.cvtColor(good, cv2.COLOR_BGR2GRAY), 2, 1, 0.2), 0.2, 1.2)
    assert r1.frame.shape == r2.frame.shape == (360, 640, 3)
    assert pipe.health()["process_errors"] == 0
