"""Labelled scenes for `edge eval` and the scenario tests: load, compose, run through the real pipeline.

A scene is a folder with `scene.yaml` (format in tests/scenes/README.md): named images (real photos, or a
real photo with real crops pasted in -- the scene says which), a timeline of which image the camera shows for
how long (with optional brightness ramps and moving pastes), sensor events, zones/stations/schedules in
edge.yaml syntax, and the alerts a person expects.

Running a scene = for every sample time: inject due sensor events, build the frame, motion gate (drivers/
cameras), detector (models/, the real ONNX model), tracker (models/tracker.py), analytics, then the real
rules + AlertManager on a real SQLite store, all on a FakeClock that follows the frame times.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ruamel.yaml import YAML

from edge.clock import FakeClock
from edge.vision import FrameResult

log = logging.getLogger("edge.analytics.scenes")

CAMERA = "cam"


class SceneError(ValueError):
    pass


# ---- loading --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Scene:
    name: str
    path: Path
    spec: dict[str, Any]
    config: Any  # edge Config with the scene's zones/stations/schedules

    @property
    def every_s(self) -> float:
        return float(self.spec.get("every_s", 10))

    @property
    def start_ts(self) -> float:
        start = self.spec.get("start", "2026-12-01T10:00:00+08:00")
        try:
            return datetime.fromisoformat(str(start)).timestamp()
        except ValueError:
            raise SceneError(f"{self.path}: start {start!r} is not an ISO time with offset") from None

    @property
    def duration_s(self) -> float:
        return sum(float(seg["for_s"]) for seg in self.spec["timeline"])


def _scene_config(spec: dict[str, Any], path: Path):
    """The scene's zones/stations/schedules as a validated edge Config (one camera called "cam").

    Bins of a station need no sensor device here: sensor readings are injected as bin.full events.
    """
    from pydantic import ValidationError

    from edge.config import Config
    from edge.config.models import cross_check

    zones = [dict(z, camera=CAMERA) for z in spec.get("zones", [])]
    stations = [dict(s, camera=s.get("camera", CAMERA)) for s in spec.get("stations", [])]
    doc = {
        "gateway": {"id": "gw-eval", "compound_id": "cp-eval", "county_code": "330106",
                    "timezone": spec.get("timezone", "Asia/Shanghai")},
        "cameras": [{"id": CAMERA, "url": "file:///scene"}],
        "zones": zones, "schedules": spec.get("schedules", []), "stations": stations,
        "alerts": {"cooldown_s": spec.get("cooldown_s", 300)},
    }
    try:
        cfg = Config.model_validate(doc)
    except ValidationError as exc:
        raise SceneError(f"{path}: zones/stations/schedules are invalid: {exc}") from None
    problems = [p for p in cross_check(cfg) if "unknown bin" not in p[1]]
    if problems:
        raise SceneError(f"{path}: " + "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg, _ in problems))
    return cfg


def load_scene(path: str | Path) -> Scene:
    path = Path(path)
    f = path / "scene.yaml" if path.is_dir() else path
    try:
        spec = YAML(typ="safe").load(f.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SceneError(f"{f}: cannot read: {exc.strerror}") from None
    except Exception as exc:
        raise SceneError(f"{f}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise SceneError(f"{f}: expected a mapping")
    for key in ("images", "timeline", "expect"):
        if key not in spec:
            raise SceneError(f"{f}: missing '{key}'")
    for i, seg in enumerate(spec["timeline"]):
        if not isinstance(seg, dict) or "image" not in seg or "for_s" not in seg:
            raise SceneError(f"{f}: timeline[{i}] needs image and for_s")
        if seg["image"] not in spec["images"]:
            raise SceneError(f"{f}: timeline[{i}]: unknown image {seg['image']!r}")
    return Scene(spec.get("name", f.parent.name), f.parent, spec, _scene_config(spec, f))


def find_scenes(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if (d / "scene.yaml").is_file():
        return [d]
    found = sorted(p.parent for p in d.glob("*/scene.yaml"))
    if not found:
        raise SceneError(f"{d}: no scene.yaml here or in its subfolders")
    return found


# ---- composing frames -------------------------------------------------------------------------------------------------
class Composer:
    """Builds the frames of a scene from its image recipes (cached; moving pastes are drawn per time)."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self._files: dict[Path, np.ndarray] = {}
        self._images: dict[str, np.ndarray] = {}
        self.size = self._size()

    def _file(self, rel: str) -> np.ndarray:
        p = (self.scene.path / rel).resolve()
        img = self._files.get(p)
        if img is None:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise SceneError(f"{self.scene.path}: cannot read image {rel}")
            self._files[p] = img
        return img

    def _size(self) -> tuple[int, int]:
        if "size" in self.scene.spec:
            w, h = self.scene.spec["size"]
            return int(w), int(h)
        first = self.scene.spec["timeline"][0]["image"]
        recipe = self.scene.spec["images"][first]
        while "base" in recipe:
            recipe = self.scene.spec["images"][recipe["base"]]
        img = self._file(recipe["file"])
        h, w = img.shape[:2]
        return 640, int(round(h * 640 / w))

    def image(self, name: str) -> np.ndarray:
        img = self._images.get(name)
        if img is not None:
            return img
        recipe = self.scene.spec["images"].get(name)
        if recipe is None:
            raise SceneError(f"{self.scene.path}: unknown image {name!r}")
        if "file" in recipe:
            img = cv2.resize(self._file(recipe["file"]), self.size, interpolation=cv2.INTER_AREA)
        elif "base" in recipe:
            img = self.image(recipe["base"]).copy()
        else:
            raise SceneError(f"{self.scene.path}: image {name!r} needs file or base")
        for op in recipe.get("paste", []):
            self._paste(img, op, 0.0)
        self._images[name] = img
        return img

    def _paste(self, img: np.ndarray, op: dict[str, Any], progress: float) -> None:
        src = self._file(op["file"]) if "file" in op else self.image(op["image"])
        sh, sw = src.shape[:2]
        cx1, cy1, cx2, cy2 = op.get("crop", [0, 0, 1, 1])
        crop = src[int(cy1 * sh):int(cy2 * sh), int(cx1 * sw):int(cx2 * sw)]
        box = op["box"]
        if isinstance(box, dict):
            a, b = np.asarray(box["from"], float), np.asarray(box["to"], float)
            box = list(a + (b - a) * progress)
        h, w = img.shape[:2]
        x1, y1, x2, y2 = int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)
        if x2 - x1 < 2 or y2 - y1 < 2 or crop.size == 0:
            raise SceneError(f"{self.scene.path}: paste box {box} or crop is empty")
        patch = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = np.zeros((y2 - y1, x2 - x1), np.float32)
        if op.get("shape", "rect") == "ellipse":
            cv2.ellipse(alpha, ((x2 - x1) // 2, (y2 - y1) // 2), (int((x2 - x1) * 0.49), int((y2 - y1) * 0.49)),
                        0, 0, 360, 1.0, -1)
        else:
            alpha[:] = 1
        feather = int(op.get("feather", 5))
        if feather > 0:
            k = feather * 2 + 1
            alpha = cv2.GaussianBlur(alpha, (k, k), 0)
        # clip to the frame
        ox1, oy1, ox2, oy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if ox2 <= ox1 or oy2 <= oy1:
            return
        px1, py1 = ox1 - x1, oy1 - y1
        p = patch[py1:py1 + oy2 - oy1, px1:px1 + ox2 - ox1]
        a = alpha[py1:py1 + oy2 - oy1, px1:px1 + ox2 - ox1, None]
        region = img[oy1:oy2, ox1:ox2].astype(np.float32)
        img[oy1:oy2, ox1:ox2] = np.clip(region * (1 - a) + p * a, 0, 255).astype(np.uint8)

    def frame(self, seg: dict[str, Any], t_in_seg: float) -> np.ndarray:
        base = self.image(seg["image"])
        progress = min(1.0, max(0.0, t_in_seg / max(float(seg["for_s"]), 1e-9)))
        img = base
        if seg.get("paste"):
            img = base.copy()
            for op in seg["paste"]:
                self._paste(img, op, progress)
        b = seg.get("brightness")
        if b is not None:
            lo, hi = (float(b), float(b)) if not isinstance(b, list) else (float(b[0]), float(b[-1]))
            k = lo + (hi - lo) * progress
            img = np.clip(img.astype(np.float32) * k, 0, 255).astype(np.uint8)
        return img

    def samples(self):
        """(t from start, segment, frame) every every_s seconds, plus the last instant of each segment."""
        every = self.scene.every_s
        t0 = 0.0
        for seg in self.scene.spec["timeline"]:
            dur = float(seg["for_s"])
            step = float(seg.get("every_s", every))
            t = 0.0
            while t < dur - 1e-9:
                yield t0 + t, seg, self.frame(seg, t)
                t += step
            t0 += dur


# ---- the pipeline -------------------------------------------------------------------------------------------------------
class VisionPipeline:
    """Motion gate -> detector -> tracker, producing FrameResults.

    drivers/cameras' CameraPipeline.process() is used when present (the production code path, production
    tracker settings); otherwise the same three steps are chained here.
    """

    def __init__(self, detector, camera: str = CAMERA, size: tuple[int, int] = (640, 480), recheck_s: float = 30.0,
                 gate: bool = True):
        self.detector = detector
        self.camera = camera
        self.stats = {"frames": 0, "detected": 0, "detect_ms": 0.0}
        self._cam = None
        self._seq = 0
        try:
            from drivers.cameras.capture import Frame
            from drivers.cameras.detectors import DetectorPool
            from drivers.cameras.pipeline import CameraPipeline
            from edge.config.cameras import CameraConfig
        except ImportError:
            CameraPipeline = None  # noqa: N806
        if CameraPipeline is not None:
            cfg = CameraConfig(id=camera, url="file:///scene", width=size[0], height=size[1],
                               motion={"enabled": gate, "recheck_s": recheck_s})
            self._Frame = Frame
            self._cam = CameraPipeline(cfg, detectors=DetectorPool(loader=lambda name: self._timed))
        else:
            from models.tracker import Tracker

            self.tracker = Tracker()
            self.gate = None
            if gate:
                from drivers.cameras.motion import MotionGate
                self.gate = MotionGate(recheck_s=recheck_s)
            self._last_dets: list = []

    @property
    def _timed(self):
        pipe = self

        class _Timed:  # counts detector time for the report; delegates everything else
            name = getattr(pipe.detector, "name", "detector")

            def detect(self, img):
                t0 = time.perf_counter()
                try:
                    return pipe.detector.detect(img)
                finally:
                    pipe.stats["detect_ms"] += (time.perf_counter() - t0) * 1000
                    pipe.stats["detected"] += 1
        return _Timed()

    def step(self, frame: np.ndarray, ts: float) -> FrameResult:
        self.stats["frames"] += 1
        self._seq += 1
        if self._cam is not None:
            return self._cam.process(self._Frame(frame, self._seq, 0, ts), ts, ts)
        run, motion = True, 0.0
        if self.gate is not None:
            d = self.gate.decide(frame, ts)
            run, motion = d.run, d.motion
        dets: list = []
        if run:
            dets = self._timed.detect(frame)
            self._last_dets = dets
            tracks = self.tracker.update(dets, ts)
        else:
            tracks = self.tracker.update(self._last_dets, ts)
        return FrameResult(self.camera, ts, frame, dets, list(tracks), motion, run)


class _SyncBus:
    """The bus for a scene run: commit each event at once and hand it to the alert manager (no loop needed)."""

    def __init__(self, store):
        self.store = store
        self.manager = None
        self.events: list = []

    def emit(self, event) -> None:
        from edge.alerts.rules import RULES

        self.store.insert_events([event])
        self.events.append(event)
        rule = RULES.get(event.kind)
        if rule is not None and self.manager is not None:
            action = rule(event)
            if action is not None:
                self.manager.apply(action, event)


@dataclasses.dataclass
class SceneRun:
    scene: Scene
    events: list
    alerts: list[dict]
    history: dict[str, list[dict]]
    media: dict[str, bytes]
    start_ts: float
    wall_s: float
    pipeline: dict[str, Any]
    status: dict[str, Any]
    stats: dict[str, Any]
    labels: dict[str, int]  # detections per label over the run
    health: dict[str, Any]  # the camera analytics' counters at the end

    def t(self, ts_ms: int) -> float:
        return ts_ms / 1000 - self.start_ts


def run_scene(scene: Scene, detector, workdir: str | Path | None = None, gate: bool = True) -> SceneRun:
    from edge.alerts.manager import AlertManager
    from edge.events import Event
    from edge.runtime.context import RuntimeContext
    from edge.store import Store

    from . import station_stats
    from .bin_overflow import BinFusion
    from .camera import CameraAnalytics
    from .clutter import save_reference
    from .sink import EmissionSink

    t_wall = time.perf_counter()
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-eval-")
        workdir = tmp.name
    try:
        start = scene.start_ts
        clock = FakeClock(start)
        store = Store(Path(workdir) / f"{scene.name}.db", synchronous="OFF", clock_ms=clock.time_ms)
        station_stats.ensure_tables(store)
        bus = _SyncBus(store)
        ctx = RuntimeContext(config=scene.config, store=store, bus=bus, clock=clock)  # type: ignore[arg-type]
        manager = AlertManager(cooldown_s=scene.config.alerts.cooldown_s)
        manager.ctx = ctx
        bus.manager = manager
        sink = EmissionSink(ctx)
        fusion = BinFusion(scene.config.stations) if scene.config.stations else None
        cam = CameraAnalytics(CAMERA, scene.config, fusion)
        composer = Composer(scene)
        ref = scene.spec.get("reference")
        if ref:
            save_reference(store, CAMERA, composer.image(ref), by="scene", now_ms=clock.time_ms())
            from .clutter import load_reference
            cam.detector.load_record(load_reference(store, CAMERA))
        pipe = VisionPipeline(detector, CAMERA, composer.size, gate=gate)
        pending = sorted(scene.spec.get("events", []), key=lambda e: float(e["at_s"]))
        labels: dict[str, int] = {}
        for t, seg, frame in composer.samples():
            ts = start + t
            clock.set(ts)
            while pending and float(pending[0]["at_s"]) <= t + 1e-9:
                ev = pending.pop(0)
                e_ts = start + float(ev["at_s"])
                clock.set(e_ts)
                e: Event = ctx.make_event(ev["kind"], ev.get("source", "eval-bins"), ev.get("payload", {}),
                                          ts_ms=int(e_ts * 1000))
                bus.emit(e)
                if fusion is not None and e.kind == "bin.full":
                    sink.write_sync(fusion.on_sensor(e.payload, e_ts, e.source))
                clock.set(ts)
            fr = pipe.step(frame, ts)
            for d in fr.detections:
                labels[d.label] = labels.get(d.label, 0) + 1
            sink.write_sync(cam.process(fr))
        alerts = manager.list(limit=1000)
        history = {a["id"]: manager.history(a["id"]) for a in alerts}
        media = {}
        with store.transaction() as conn:
            rows = conn.execute("SELECT id FROM media WHERE role = 'evidence'").fetchall()
        for (mid,) in rows:
            got = store.get_media(mid)
            if got is not None:
                media[mid] = got[1]
        stats = station_stats.station_stats(store, None, int(start * 1000), int((start + scene.duration_s) * 1000)
                                            + 1, tz=scene.config.gateway.timezone,
                                            now_ms=int((start + scene.duration_s) * 1000))
        status = cam.status()
        store.close()
        pstats = dict(pipe.stats)
        pstats["detect_ms"] = round(pstats["detect_ms"], 1)
        return SceneRun(scene, list(bus.events), alerts, history, media, start, time.perf_counter() - t_wall,
                        pstats, status, stats, labels, cam.health())
    finally:
        if tmp is not None:
            tmp.cleanup()


# ---- scoring ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Opening:
    alert: dict
    t: float  # seconds from the scene start
    cleared_t: float | None


def openings(run: SceneRun) -> list[Opening]:
    """Every time an alert was raised or re-opened (a split episode shows up as two openings)."""
    out = []
    for a in run.alerts:
        hist = run.history[a["id"]]
        opens = [h for h in hist if h["action"] in ("raised", "reopened")]
        for i, h in enumerate(opens):
            nxt = opens[i + 1]["ts_ms"] if i + 1 < len(opens) else None
            cleared = [c["ts_ms"] for c in hist if c["action"] in ("cleared", "resolved")
                       and c["ts_ms"] >= h["ts_ms"] and (nxt is None or c["ts_ms"] <= nxt)]
            out.append(Opening(a, run.t(h["ts_ms"]), run.t(cleared[0]) if cleared else None))
    return sorted(out, key=lambda o: o.t)


def _evidence_seen(run: SceneRun, o: Opening) -> list[list[str]]:
    """The evidence lists of the events that raised or updated this alert opening."""
    from edge.alerts.rules import RULES

    seen = []
    for e in run.events:
        rule = RULES.get(e.kind)
        t = run.t(e.ts_ms)
        if rule is None or t < o.t - 1e-6 or (o.cleared_t is not None and t > o.cleared_t + 1e-6):
            continue
        action = rule(e)
        if action is not None and action.key == o.alert["dedup_key"] and action.op in ("raise", "update") \
                and "evidence" in e.payload:
            seen.append(sorted(e.payload["evidence"]))
    return seen


def _in(t: float | None, window) -> bool:
    if window is None:
        return True
    if t is None:
        return False
    return float(window[0]) <= t <= float(window[1])


def score(run: SceneRun) -> dict[str, Any]:
    """Match expected alerts to what happened. Per kind: tp/fp/fn for raising; `<kind> (cleared)` likewise."""
    produced = openings(run)
    used: set[int] = set()
    counts: dict[str, dict[str, int]] = {}
    problems: list[str] = []

    def c(kind: str) -> dict[str, int]:
        return counts.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0})

    for exp in run.scene.spec.get("expect", []) or []:
        kind = exp["alert"]
        match = None
        for i, o in enumerate(produced):
            if i in used or o.alert["kind"] != kind:
                continue
            if "zone" in exp and o.alert["zone"] != exp["zone"]:
                continue
            if not _in(o.t, exp.get("raised_s")):
                continue
            if "evidence" in exp and sorted(exp["evidence"]) not in _evidence_seen(run, o):
                continue
            match = i
            break
        if match is None:
            c(kind)["fn"] += 1
            problems.append(f"expected {kind} {exp.get('zone', '')} raised in {exp.get('raised_s', 'any time')}: "
                            f"not found")
            continue
        used.add(match)
        c(kind)["tp"] += 1
        o = produced[match]
        if "updates" in exp:
            lo, hi = exp["updates"] if isinstance(exp["updates"], list) else (exp["updates"], exp["updates"])
            if not lo <= o.alert["updates"] <= hi:
                problems.append(f"{kind} {o.alert['zone']}: {o.alert['updates']} updates, expected {exp['updates']}")
        ck = f"{kind} (cleared)"
        if "cleared_s" in exp:
            if _in(o.cleared_t, exp["cleared_s"]):
                c(ck)["tp"] += 1
            else:
                c(ck)["fn"] += 1
                problems.append(f"{kind} {o.alert['zone']}: expected cleared in {exp['cleared_s']}, "
                                f"got {o.cleared_t}")
        elif exp.get("cleared") is False and o.cleared_t is not None:
            c(ck)["fp"] += 1
            problems.append(f"{kind} {o.alert['zone']}: cleared at {o.cleared_t:.0f} s but should stay open")
    for st, want in (run.scene.spec.get("expect_stats") or {}).items():
        got = run.stats["stations"].get(st, {})
        for field, value in want.items():
            have = got.get(field)
            ok = (have is not None and float(value[0]) <= have <= float(value[1])) if isinstance(value, list) \
                else have == value
            if not ok:
                problems.append(f"station {st}: {field} is {have}, expected {value}")
    for i, o in enumerate(produced):
        if i not in used:
            c(o.alert["kind"])["fp"] += 1
            problems.append(f"unexpected {o.alert['kind']} {o.alert['zone']} at {o.t:.0f} s: {o.alert['title']}")
    return {"counts": counts, "problems": problems,
            "openings": [{"kind": o.alert["kind"], "zone": o.alert["zone"], "t": round(o.t, 1),
                          "cleared_t": round(o.cleared_t, 1) if o.cleared_t is not None else None,
                          "title": o.alert["title"], "updates": o.alert["updates"]} for o in produced]}


def table(per_kind: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in sorted(per_kind):
        k = per_kind[kind]
        tp, fp, fn = k["tp"], k["fp"], k["fn"]
        out[kind] = dict(k, precision=round(tp / (tp + fp), 3) if tp + fp else None,
                         recall=round(tp / (tp + fn), 3) if tp + fn else None)
    return out


def evaluate(directory: str | Path, detector=None, evidence_dir: str | Path | None = None,
             gate: bool = True) -> dict[str, Any]:
    if detector is None:
        from models.runtime import shared_detector
        detector = shared_detector("default", threads=1)
    results = []
    total: dict[str, dict[str, int]] = {}
    t0 = time.perf_counter()
    for p in find_scenes(directory):
        scene = load_scene(p)
        run = run_scene(scene, detector, gate=gate)
        sc = score(run)
        for kind, k in sc["counts"].items():
            agg = total.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0})
            for f in agg:
                agg[f] += k[f]
        if evidence_dir is not None:
            out = Path(evidence_dir) / scene.name
            out.mkdir(parents=True, exist_ok=True)
            for mid, data in run.media.items():
                (out / f"{mid}.jpg").write_bytes(data)
        results.append({"scene": scene.name, "composed": bool(scene.spec.get("composed", False)),
                        "passed": not sc["problems"], "problems": sc["problems"], "alerts": sc["openings"],
                        "frames": run.pipeline["frames"], "detector_runs": run.pipeline["detected"],
                        "wall_s": round(run.wall_s, 2), "station_stats": run.stats["stations"]})
    return {"scenes": results, "kinds": table(total), "passed": sum(r["passed"] for r in results),
            "total": len(results), "wall_s": round(time.perf_counter() - t0, 2),
            "detector": getattr(detector, "name", type(detector).__name__)}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'alert kind':<32} {'tp':>3} {'fp':>3} {'fn':>3} {'precision':>9} {'recall':>7}"]
    for kind, k in report["kinds"].items():
        p = "-" if k["precision"] is None else f"{k['precision']:.2f}"
        r = "-" if k["recall"] is None else f"{k['recall']:.2f}"
        lines.append(f"{kind:<32} {k['tp']:>3} {k['fp']:>3} {k['fn']:>3} {p:>9} {r:>7}")
    lines.append("")
    for s in report["scenes"]:
        mark = "PASS" if s["passed"] else "FAIL"
        lines.append(f"{mark} {s['scene']}{' (composed)' if s['composed'] else ''}: "
                     f"{len(s['alerts'])} alert(s), {s['frames']} frames, {s['detector_runs']} detector runs, "
                     f"{s['wall_s']} s")
        for p in s["problems"]:
            lines.append(f"     {p}")
    lines.append(f"{report['passed']}/{report['total']} scenes passed in {report['wall_s']} s "
                 f"(detector {report['detector']})")
    return "\n".join(lines)


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)
