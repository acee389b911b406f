"""Inference benchmark: ms per frame of Detector.detect() (preprocess + onnxruntime + decode) on real photos.

Used by bench/inference.py and by `edge bench inference --json` (models.cli.run_inference_bench).
Numbers are per frame, each frame one photo from the image folder, cycled; warm-up runs are not counted.
"""
from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from .runtime import DEFAULT_MODEL, load_detector

REPO = Path(__file__).resolve().parent.parent
IMAGE_DIRS = (Path("/work/shared/data/images"), REPO / "tests" / "data")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def default_image_dir() -> Path:
    for d in IMAGE_DIRS:
        if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
            return d
    raise FileNotFoundError(f"no photos found in {', '.join(map(str, IMAGE_DIRS))}")


def load_images(image_dir: Path) -> list[tuple[str, np.ndarray]]:
    out = []
    for p in sorted(image_dir.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                out.append((p.name, img))
    if not out:
        raise FileNotFoundError(f"no readable photos in {image_dir}")
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_detector(detector, images: list[np.ndarray], frames: int, warmup: int = 3) -> dict:
    for i in range(warmup):
        detector.detect(images[i % len(images)])
    ms, cpu = [], []
    for i in range(frames):
        img = images[i % len(images)]
        c0, t0 = time.process_time(), time.perf_counter()
        detector.detect(img)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    # cpu_ms (all threads of this process) is what the frame cost the machine; on a shared box it also
    # shows whether a slow wall time was contention (wall >> cpu / threads) or work
    return {"frames": frames, "median_ms": round(statistics.median(ms), 2), "p90_ms": round(percentile(ms, 90), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "min_ms": round(min(ms), 2),
            "cpu_ms_median": round(statistics.median(cpu), 2)}


def run(model: str = DEFAULT_MODEL, threads: tuple[int, ...] = (1, 2), frames: int | None = None,
        image_dir: Path | None = None, extra_dirs=(), memory_arena: bool = True) -> dict:
    image_dir = image_dir or default_image_dir()
    named = load_images(image_dir)
    images = [img for _, img in named]
    frames = frames or max(2 * len(images), 40)
    result: dict = {"bench": "inference", "model": model, "image_dir": str(image_dir), "images": len(images),
                    "image_sizes": sorted({f"{i.shape[1]}x{i.shape[0]}" for i in images}),
                    "cpu_count": os.cpu_count(), "machine": platform.machine(),
                    "processor": _cpu_name(), "onnxruntime": _ort_version(), "threads": {}}
    rss0 = _rss_mb()
    result["rss_mb_before_load"] = round(rss0, 1)
    for n in threads:
        det = load_detector(model, threads=n, extra_dirs=extra_dirs, memory_arena=memory_arena)
        result["model"] = det.name
        result["threads"][str(n)] = time_detector(det, images, frames)
        result["threads"][str(n)]["rss_mb"] = round(_rss_mb(), 1)   # process RSS with this session loaded
        del det
        gc.collect()
    result["memory_arena"] = memory_arena
    return result


def _rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 1e6


def _ort_version() -> str:
    import onnxruntime
    return onnxruntime.__version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
