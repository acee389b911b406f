#!/usr/bin/env python3
"""Camera pipeline benchmark: what one CPU core sustains at 640x360 and 5 detections/s, with and without
motion gating, and peak RSS of the whole gateway with 4 cameras.

    .venv/bin/python bench/pipeline.py [--json] [--seconds 20] [--live-seconds 12] [--quick]
    edge bench pipeline --json

Three parts, all pinned to one core (sched_setaffinity; onnxruntime 1 thread, OpenCV 1 thread):

1. cost: every clip in /work/shared/data/videos plus a composed "mostly static" compound scene is decoded
   frame by frame as a camera would deliver it (every frame decoded from H.264, the 5 fps samples retrieved),
   then resized to 640x360, motion-gated, detected and tracked by the real CameraPipeline.process().
   CPU seconds per second of video give frames processed per CPU-second and cameras per core.
2. live: N cameras (looped file sources at their native frame rate) in a real Gateway process pinned to one
   core; sustained when the cameras keep >= 90 % of their 5 fps (each >= 80 %) and the core is not
   saturated. On a shared machine other processes take part of the core: `starved_by_other_load` marks runs
   that fell behind while using less than 85 % of it, and `cameras_per_core_by_cpu` extrapolates from the
   CPU time actually used.
3. rss: peak RSS (ru_maxrss) of the 4-camera live gateway process.

The composed scene (how a residential compound camera spends most of its day): the first frame of
intel_parking_lot.mp4 held for 48 s with real sensor-like noise re-encoded by the codec, then 12 s of the real
clip with cars moving - 80 % static. Four variants place the motion at different times so that live
cameras do not all move at once.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VIDEOS = Path("/work/shared/data/videos")
DETECT_FPS = 5.0
SIZE = (640, 360)
STATIC_SCENE_S = 60.0
STATIC_MOTION_S = 12.0


def pin_one_core() -> int:
    cpus = sorted(os.sched_getaffinity(0))
    core = cpus[-1]
    os.sched_setaffinity(0, {core})
    import cv2

    cv2.setNumThreads(1)
    return core


# ---- scenes -------------------------------------------------------------------------------------------------

def compose_static_scene(out_dir: Path, variants: int = 4, seconds: float = STATIC_SCENE_S,
                         motion_s: float = STATIC_MOTION_S) -> list[Path]:
    import cv2
    import numpy as np

    src = VIDEOS / "intel_parking_lot.mp4"
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 12.5
    moving = []
    while len(moving) < int(motion_s * fps):
        ok, img = cap.read()
        if not ok:
            break
        moving.append(cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    still = moving[0]
    rng = np.random.default_rng(3)
    noise = [rng.normal(0, 2.0, still.shape).astype(np.int16) for _ in range(8)]
    total = int(seconds * fps)
    paths = []
    for v in range(variants):
        path = out_dir / f"compound_static_{v}.mp4"
        start = int(v * total / variants) % max(1, total - len(moving))
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
        for i in range(total):
            if start <= i < start + len(moving):
                img = moving[i - start]
            else:
                img = np.clip(still.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)
            w.write(img)
        w.release()
        paths.append(path)
    return paths


# ---- part 1: cost per second of video ----------------------------------------------------------------------

def cost_run(path: Path, gating: bool, seconds: float, pool) -> dict:
    from drivers.cameras.capture import Frame
    from drivers.cameras.pipeline import CameraPipeline
    from drivers.cameras.sources.opencv import FileSource
    from edge.config.cameras import CameraConfig

    cam = CameraConfig(id="bench", url=f"file://{path}", detect_fps=DETECT_FPS, width=SIZE[0], height=SIZE[1],
                       motion={"enabled": gating})
    pipe = CameraPipeline(cam, detectors=pool)
    src = FileSource(path, loop=True, realtime=False)
    info = src.open()
    fps = info.fps or 10.0
    frames = int(seconds * fps)
    nxt = 0.0
    processed = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(frames):
        src.grab()
        t = i / fps
        if t + 1e-9 >= nxt:
            nxt += 1.0 / DETECT_FPS
            img = src.retrieve()
            if img is None:
                continue
            pipe.process(Frame(img, i, 1, t), t, 1_780_000_000.0 + t)
            processed += 1
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    src.close()
    video_s = frames / fps
    return {"video_s": round(video_s, 1), "source": f"{info.width}x{info.height}@{fps:g}",
            "frames_decoded": frames, "frames_processed": processed, "detector_runs": pipe.detector_runs,
            "motion_ratio": pipe.health()["motion_ratio"], "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "cpu_ms_per_video_s": round(cpu / video_s * 1000, 1),
            "processed_fps_per_core": round(processed / cpu, 1),
            "cameras_per_core": round(video_s / cpu, 2)}


def decode_only_run(path: Path, seconds: float) -> dict:
    from drivers.cameras.sources.opencv import FileSource

    src = FileSource(path, loop=True, realtime=False)
    info = src.open()
    fps = info.fps or 10.0
    frames = int(seconds * fps)
    nxt = 0.0
    cpu0 = time.process_time()
    for i in range(frames):
        src.grab()
        if i / fps + 1e-9 >= nxt:
            nxt += 1.0 / DETECT_FPS
            src.retrieve()
    cpu = time.process_time() - cpu0
    src.close()
    return {"cpu_ms_per_video_s": round(cpu / (frames / fps) * 1000, 1)}


def cost_all(clips: list[Path], seconds: float) -> dict:
    from drivers.cameras.detectors import DetectorPool

    pool = DetectorPool(threads=1)
    det = pool.get("default")
    if det is None:
        raise SystemExit(f"default detector unavailable: {pool.error('default')}")
    out = {}
    for path in clips:
        name = path.stem
        # the composed scene is measured over its whole 60 s loop (its motion is in one 12 s block)
        secs = max(seconds, STATIC_SCENE_S) if name.startswith("compound_static") else seconds
        gated = cost_run(path, True, secs, pool)
        ungated = cost_run(path, False, secs, pool)
        out[name] = {
            "decode_only": decode_only_run(path, seconds), "gated": gated, "ungated": ungated,
            "gating_speedup": round(ungated["cpu_s"] / gated["cpu_s"], 2) if gated["cpu_s"] else None,
        }
    out["detector_mean_ms"] = det.health().get("mean_ms")
    return out


# ---- part 2/3: live gateway children --------------------------------------------------------------------

def live_child(n: int, gating: bool, seconds: float, clips: list[str], warmup: float) -> dict:
    core = pin_one_core()
    import psutil

    from edge.config import load_config_text
    from edge.runtime import Gateway

    cams = "\n".join(
        f"""  - id: cam{i}
    url: file://{clips[i % len(clips)]}
    detect_fps: {DETECT_FPS}
    width: {SIZE[0]}
    height: {SIZE[1]}
    motion: {{enabled: {str(gating).lower()}}}""" for i in range(n))
    data = tempfile.mkdtemp(prefix="bench-pipeline-")
    cfg = load_config_text(f"""gateway: {{id: gw-bench, compound_id: cp-bench, county_code: "330106"}}
storage: {{path: {data}}}
web: {{enabled: false}}
models: {{threads: 1}}
cameras:
{cams}
""")

    async def main() -> dict:
        gw = Gateway(cfg)
        ctx = await gw.start()
        pipes = ctx.services["cameras"].pipelines
        await asyncio.sleep(warmup)
        proc = psutil.Process()
        c0 = time.process_time()
        w0 = time.perf_counter()
        p0 = {k: p.processed for k, p in pipes.items()}
        r0 = {k: p.detector_runs for k, p in pipes.items()}
        rss_samples = []
        end = w0 + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(0.5)
            rss_samples.append(proc.memory_info().rss)
        wall = time.perf_counter() - w0
        cpu = time.process_time() - c0
        fps = {k: round((p.processed - p0[k]) / wall, 2) for k, p in pipes.items()}
        runs = sum(p.detector_runs - r0[k] for k, p in pipes.items())
        errors = {k: p.health()["last_error"] for k, p in pipes.items() if p.health()["last_error"]}
        await gw.stop()
        return {"cameras": n, "gating": gating, "core": core, "seconds": round(wall, 1),
                "cpu_utilisation": round(cpu / wall, 3),
                # CPU-time based (robust on a shared machine): CPU per camera scaled to the full 5 fps (a
                # starved camera processes fewer frames, hence runs the detector less), inverted
                "cameras_per_core_by_cpu": (round(sum(fps.values()) / DETECT_FPS / (cpu / wall), 1)
                                            if cpu and sum(fps.values()) else None),
                "fps_out_mean": round(sum(fps.values()) / n, 2),
                "fps_out_min": min(fps.values()), "detector_runs_per_s": round(runs / wall, 2),
                "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "rss_steady_mb": round(max(rss_samples) / 2**20, 1) if rss_samples else None,
                "errors": errors}

    return asyncio.run(main())


def run_live(n: int, gating: bool, seconds: float, clips: list[Path], warmup: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--gating", "1" if gating else "0", "--live-seconds",
           str(seconds), "--warmup", str(warmup), "--clips", ",".join(map(str, clips))]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 120)
    if out.returncode != 0:
        return {"cameras": n, "gating": gating, "error": out.stderr.strip().splitlines()[-1:] or ["?"]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["sustained"] = (res["fps_out_mean"] >= 0.9 * DETECT_FPS and res["fps_out_min"] >= 0.8 * DETECT_FPS
                        and res["cpu_utilisation"] < 0.97)
    # below rate while the core was not busy with us: other processes took it (the machine is shared)
    res["starved_by_other_load"] = not res["sustained"] and res["cpu_utilisation"] < 0.85
    return res


def live_search(static: list[Path], seconds: float, warmup: float, quick: bool) -> dict:
    results = {"gated": [], "ungated": []}
    for n in ([4, 8] if quick else [4, 8, 12, 16]):
        r = run_live(n, True, seconds, static, warmup)
        results["gated"].append(r)
        if not r.get("sustained") and not r.get("starved_by_other_load"):
            break
    for n in ([1, 2] if quick else [1, 2, 3]):
        r = run_live(n, False, seconds, static, warmup)
        results["ungated"].append(r)
        if not r.get("sustained") and not r.get("starved_by_other_load"):
            break

    def best(rows):
        ok = [r["cameras"] for r in rows if r.get("sustained")]
        return max(ok) if ok else 0

    results["max_sustained_gated"] = best(results["gated"])
    results["max_sustained_ungated"] = best(results["ungated"])
    for key in ("gated", "ungated"):
        rows = [r for r in results[key] if r.get("cameras_per_core_by_cpu")]
        results[f"cameras_per_core_by_cpu_{key}"] = rows[-1]["cameras_per_core_by_cpu"] if rows else None
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of video per clip in the cost part")
    ap.add_argument("--live-seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=6.0)
    ap.add_argument("--quick", action="store_true", help="fewer live runs")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--gating", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--clips", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(live_child(args.child, bool(args.gating), args.live_seconds, args.clips.split(","),
                                    args.warmup)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-scenes-") as tmp:
        static = compose_static_scene(Path(tmp))
        clips = sorted(VIDEOS.glob("*.mp4"))
        report: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]},
                        "detect_fps": DETECT_FPS, "size": f"{SIZE[0]}x{SIZE[1]}"}
        # the cost part runs in this process, pinned; the live parts are fresh processes (honest RSS)
        affinity = os.sched_getaffinity(0)
        report["core"] = pin_one_core()
        report["cost"] = cost_all(clips + static[:1], args.seconds)
        os.sched_setaffinity(0, affinity)
        if not args.skip_live:
            report["live"] = live_search(static, args.live_seconds, args.warmup, args.quick)
            four = next((r for r in report["live"]["gated"] if r.get("cameras") == 4), None)
            report["rss_4_cameras_mb"] = four.get("rss_peak_mb") if four else None
            report["rss_4_cameras_steady_mb"] = four.get("rss_steady_mb") if four else None
        report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        s = report["cost"].get("compound_static_0", {})
        report["summary"] = {
            "static_scene_gating_speedup": s.get("gating_speedup"),
            "static_scene_cameras_per_core_gated": s.get("gated", {}).get("cameras_per_core"),
            "static_scene_cameras_per_core_ungated": s.get("ungated", {}).get("cameras_per_core"),
            "static_scene_cpu_ms_per_camera_s_gated": s.get("gated", {}).get("cpu_ms_per_video_s"),
            "static_scene_cpu_ms_per_camera_s_ungated": s.get("ungated", {}).get("cpu_ms_per_video_s"),
            "detector_mean_ms": report["cost"].get("detector_mean_ms"),
            "live_max_cameras_one_core_gated": report.get("live", {}).get("max_sustained_gated"),
            "live_max_cameras_one_core_ungated": report.get("live", {}).get("max_sustained_ungated"),
            "live_cameras_per_core_by_cpu_gated": report.get("live", {}).get("cameras_per_core_by_cpu_gated"),
            "live_cameras_per_core_by_cpu_ungated": report.get("live", {}).get("cameras_per_core_by_cpu_ungated"),
            "rss_4_cameras_mb": report.get("rss_4_cameras_mb"),
            "rss_4_cameras_steady_mb": report.get("rss_4_cameras_steady_mb"),
            "goals": {"cameras_per_core_gated": ">= 8", "gating_speedup_static": ">= 4", "rss_4_cameras_mb": "<= 250"},
        }
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
