#!/usr/bin/env python3
"""Inference benchmark: median and p90 ms per frame of the default model, 1 and 2 threads, on real photos.

    .venv/bin/python bench/inference.py                 # JSON for the default model
    .venv/bin/python bench/inference.py --model NAME --threads 1,2,4 --frames 100
    .venv/bin/python bench/inference.py --compare /work/shared/models
        # speed and detections of every candidate default detector (how the default was chosen)

Each frame is Detector.detect() on one photo (resize + onnxruntime + decode + NMS), photos cycled.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models import benchmark  # noqa: E402
from models.manifest import parse_manifest  # noqa: E402
from models.runtime import DEFAULT_MODEL, Detector, find_manifest  # noqa: E402

# The four converted candidates from /work/shared/models (PROVENANCE.md), described the way an installer
# would describe them; only the chosen one is shipped in models/ with a manifest file.
CANDIDATES = {
    "ssd_mobilenet_v2_coco": None,  # the shipped manifest, pointed at the candidate folder
    "ssd_mobilenet_v2_coco.int8": None,
    "centernet_mobilenetv3_coco": dict(
        file="centernet_mobilenetv3_coco.onnx", input_name="tower_0/images:0", input_size=[512, 512],
        layout="NHWC", dtype="float32", color_order="RGB", decoder="centernet", labels_file="coco80.txt",
        score_threshold=0.3, nms_iou=0.45),
    "nanodet_m_coco": dict(
        file="nanodet_m_coco.onnx", input_name="input_1:0", input_size=[416, 416], layout="NCHW",
        dtype="float32", color_order="RGB", normalization={"scale": 1 / 255}, decoder="nanodet",
        labels_file="coco80.txt", score_threshold=0.35, nms_iou=0.5),
}


def candidate_specs(folder: Path):
    shipped = find_manifest(DEFAULT_MODEL, check_file=False).model_dump(exclude_none=True)
    for name, spec in CANDIDATES.items():
        if spec is None:
            spec = dict(shipped, file=f"{name}.onnx")
        spec = dict(spec, name=name)
        if (folder / spec["file"]).is_file():
            yield spec


def compare(folder: Path, image_dir: Path, frames: int, min_score: float) -> dict:
    named = benchmark.load_images(image_dir)
    images = [img for _, img in named]
    out = {"bench": "inference-candidates", "image_dir": str(image_dir), "min_score": min_score, "models": {}}
    for spec in candidate_specs(folder):
        m = parse_manifest(spec, folder, f"candidate {spec['name']}")
        entry = {"size_mb": round(m.model_path.stat().st_size / 1e6, 1), "threads": {}}
        for n in (1, 2):
            det = Detector(m, threads=n)
            entry["threads"][str(n)] = benchmark.time_detector(det, images, frames)
        # detections at a common low floor so the candidates can be compared like for like
        low = parse_manifest(dict(spec, score_threshold=min_score, class_thresholds={}), folder)
        det = Detector(low, threads=2)
        entry["detections"] = {
            name: [f"{d.label} {d.score:.2f}" for d in det.detect(img)] for name, img in named}
        out["models"][m.name] = entry
        print(f"measured {m.name}", file=sys.stderr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--frames", type=int, default=None, help="timed frames per thread count")
    ap.add_argument("--images", type=Path, default=None, help="photo folder (default: /work/shared/data/images)")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="measure the candidate models in DIR instead")
    ap.add_argument("--min-score", type=float, default=0.3, help="detection floor for --compare")
    ap.add_argument("--no-arena", action="store_true", help="onnxruntime CPU memory arena off (less RSS)")
    ap.add_argument("--json", action="store_true", help="accepted for `edge bench inference --json`; output is JSON")
    args = ap.parse_args(argv)
    image_dir = args.images or benchmark.default_image_dir()
    if args.compare:
        result = compare(args.compare, image_dir, args.frames or 46, args.min_score)
    else:
        threads = tuple(int(t) for t in args.threads.split(",") if t.strip())
        result = benchmark.run(args.model, threads, args.frames, image_dir, memory_arena=not args.no_arena)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
