"""`edge detect IMAGE... [--model NAME] [--threads N] [--json]` and the inference benchmark hook.

Installers use `edge detect` to check a model on a snapshot from their own camera.  Per image it prints
{"image", "ms", "detections": [{"label", "score", "box": [x1, y1, x2, y2]}]} with boxes in pixels of the
original image.  An unreadable image prints a clear error (stderr, and {"image", "error"} with --json),
the remaining images are still processed, and the exit code is 1.

Until the `edge` entry point is installed: `python -m models.cli detect IMAGE...`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .manifest import ModelError
from .runtime import DEFAULT_MODEL, load_detector


def read_image(path: str) -> np.ndarray:
    """Decode an image file to BGR; ValueError with the reason when that is impossible."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise ValueError("no such file")
    if p.is_dir():
        raise ValueError("is a directory")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"cannot read: {e.strerror or e}") from None
    if data.size == 0:
        raise ValueError("file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable image (corrupt or unsupported format)")
    return img


def cmd_detect(args: argparse.Namespace) -> int:
    try:
        detector = load_detector(args.model, threads=args.threads, extra_dirs=args.models_dir or ())
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rc = 0
    for path in args.images:
        try:
            img = read_image(path)
            t0 = time.perf_counter()
            dets = detector.detect(img)
            ms = (time.perf_counter() - t0) * 1000
        except ValueError as e:
            rc = 1
            print(f"error: {path}: {e}", file=sys.stderr)
            if args.json:
                print(json.dumps({"image": path, "error": str(e)}), flush=True)
            continue
        if args.json:
            out = {"image": path, "ms": round(ms, 1), "width": int(img.shape[1]), "height": int(img.shape[0]),
                   "model": detector.name,
                   "detections": [{"label": d.label, "score": round(d.score, 3),
                                   "box": [round(v, 1) for v in d.box]} for d in dets]}
            print(json.dumps(out), flush=True)
        else:
            print(f"{path}: {img.shape[1]}x{img.shape[0]}, {ms:.1f} ms, {len(dets)} detection(s)")
            for d in dets:
                x1, y1, x2, y2 = (int(round(v)) for v in d.box)
                print(f"  {d.label:<14} {d.score:.2f}  [{x1}, {y1}, {x2}, {y2}]")
    return rc


def run_inference_bench(json: bool = True, model: str = DEFAULT_MODEL, threads: tuple[int, ...] = (1, 2),
                        frames: int | None = None):
    """`edge bench inference --json`: median/p90 ms per frame of the default model at 1 and 2 threads.
    Returns the result dict; prints it (JSON, or a short table when json=False)."""
    import json as _json

    from . import benchmark

    result = benchmark.run(model, threads, frames)
    if json:
        print(_json.dumps(result, indent=2))
    else:
        print(f"{result['model']} on {result['images']} photos ({result['processor']}, {result['cpu_count']} cpus)")
        for n, r in result["threads"].items():
            print(f"  {n} thread(s): median {r['median_ms']} ms, p90 {r['p90_ms']} ms over {r['frames']} frames")
    return result


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("detect", help="run a detector model on image files",
                              description="Run a detector on images; boxes are pixels of the original image.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", default="default",
                   help=f"model name, manifest or .onnx path (default: {DEFAULT_MODEL})")
    p.add_argument("--threads", type=_positive_int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--models-dir", action="append", metavar="DIR", help="extra folder with .onnx + manifest")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_detect)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.cli")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_cli(sub)
    b = sub.add_parser("bench-inference", help="inference benchmark (edge bench inference)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=lambda a: run_inference_bench(json=a.json) and 0)  # returns the dict; exit code 0
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
