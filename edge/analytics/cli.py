"""`edge eval DIR [--json]` and `edge lane-reference CAMERA_OR_IMAGE`."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _eval(args) -> int:
    from .scenes import SceneError, dumps, evaluate, format_table

    detector = None
    try:
        if args.model:
            from models.runtime import load_detector
            detector = load_detector(args.model, threads=args.threads)
        report = evaluate(args.dir, detector, evidence_dir=args.evidence, gate=not args.no_gate)
    except SceneError as exc:
        print(f"edge eval: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a model that cannot load, an unreadable folder: say so, no traceback
        print(f"edge eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(dumps(report) if args.json else format_table(report))
    return 0 if report["passed"] == report["total"] else 1


def _grab_frame(cam) -> "object":
    """One frame from a configured camera, at its detect resolution (drivers/cameras sources)."""
    from drivers.cameras.pipeline import resize_to
    from drivers.cameras.sources import open_source

    src = open_source(cam, cam.snapshot_url) if cam.snapshot_url else open_source(cam)
    try:
        src.open()
        for _ in range(10):  # the first frames of a fresh RTSP session are often grey or half-decoded
            src.grab()
            img = src.retrieve()
            if img is not None:
                return resize_to(img, cam.width, cam.height)
        raise RuntimeError("the camera sent no decodable frame")
    finally:
        src.close()


def _lane_reference(args) -> int:
    import cv2

    from edge.cli.common import load_config_or_exit
    from edge.store import Store

    from . import clutter

    cfg = load_config_or_exit(args.config)
    target = Path(args.camera_or_image)
    if target.is_file():
        if not args.camera:
            print("edge lane-reference: an image needs --camera ID (which camera it was taken with)", file=sys.stderr)
            return 2
        camera_id = args.camera
        cam = cfg.camera(camera_id)
        img = cv2.imread(str(target), cv2.IMREAD_COLOR)
        if img is None:
            print(f"edge lane-reference: {target}: not a readable image", file=sys.stderr)
            return 2
        if cam is not None:
            img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    else:
        camera_id = args.camera_or_image
        cam = cfg.camera(camera_id)
        if cam is None:
            known = ", ".join(c.id for c in cfg.cameras) or "(none configured)"
            print(f"edge lane-reference: {camera_id!r} is neither an image file nor a camera id ({known})",
                  file=sys.stderr)
            return 2
        try:
            img = _grab_frame(cam)
        except Exception as exc:
            print(f"edge lane-reference: cannot get a frame from {camera_id}: {exc}", file=sys.stderr)
            return 2
    if cam is None:
        print(f"edge lane-reference: unknown camera {camera_id!r}", file=sys.stderr)
        return 2
    if not any(z.camera == camera_id for z in cfg.zones):
        print(f"edge lane-reference: warning: camera {camera_id} has no zones yet", file=sys.stderr)
    warnings = []
    if not args.no_check:
        warnings = _blockers_in_reference(cfg, camera_id, img)
        if warnings and not args.force:
            for w in warnings:
                print(f"edge lane-reference: {w}", file=sys.stderr)
            print("edge lane-reference: not saved; clear the zone or use --force", file=sys.stderr)
            return 1
    store = Store(Path(cfg.storage.path) / "edge.db")
    try:
        info = clutter.save_reference(store, camera_id, img, by=args.by, note=args.note)
    finally:
        store.close()
    out = dict(info, warnings=warnings)
    print(json.dumps(out, ensure_ascii=False) if args.json else
          f"clear reference for {camera_id} saved ({info['frame_size'][0]}x{info['frame_size'][1]}, by {args.by}); "
          "a running gateway picks it up within a minute")
    return 0


def _blockers_in_reference(cfg, camera_id: str, img) -> list[str]:
    """People or vehicles standing in the camera's zones: the reference would not be 'clear'."""
    from .zones import ZoneShape

    try:
        from models.runtime import shared_detector
        cam = cfg.camera(camera_id)
        detector = shared_detector(cam.model if cam and cam.model != "default" else cfg.models.default,
                                   threads=cfg.models.threads, extra_dirs=cfg.models.extra_dirs)
        dets = detector.detect(img)
    except Exception as exc:
        return [f"could not check the picture with the detector ({exc}); use --no-check"]
    out = []
    h, w = img.shape[:2]
    for z in cfg.zones:
        if z.camera != camera_id or z.type == "mask":
            continue
        shape = ZoneShape(z.polygon, w, h)
        for d in dets:
            if shape.footprint_inside(d.box, 0.3):
                out.append(f"zone {z.id} is not clear: {d.label} ({d.score:.2f}) at {[round(v) for v in d.box]}")
    return out


def register_cli(sub) -> None:
    p = sub.add_parser("eval", help="run the analytics over labelled scenes and print precision/recall per alert kind")
    p.add_argument("dir", help="a scene folder (with scene.yaml) or a folder of scene folders (tests/scenes)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--model", help="detector model name or manifest (default: the shipped default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--evidence", metavar="OUT", help="write every evidence JPEG to OUT/<scene>/")
    p.add_argument("--no-gate", action="store_true", help="run the detector on every frame (no motion gate)")
    p.set_defaults(func=_eval)

    r = sub.add_parser("lane-reference",
                       help='"the zone is clear now": store a camera frame (or an image) as the clear reference '
                            "for clutter / litter / overflow detection")
    r.add_argument("camera_or_image", help="camera id from edge.yaml (grabs a frame now) or an image file")
    r.add_argument("--config", default="/etc/edge-gateway/edge.yaml")
    r.add_argument("--camera", help="camera id the image belongs to (with an image file)")
    r.add_argument("--by", default="installer", help="who says the zone is clear (kept with the reference)")
    r.add_argument("--note")
    r.add_argument("--force", action="store_true", help="save even if people or vehicles stand in a zone")
    r.add_argument("--no-check", action="store_true", help="do not run the detector on the picture first")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_lane_reference)
