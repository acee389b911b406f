"""`edge probe camera URL`: installer check of one camera (the same code path as the capture worker)."""
from __future__ import annotations

import json
import sys


def _probe(args) -> int:
    from pydantic import ValidationError

    from edge.config.cameras import CameraConfig

    from .probe import probe_camera

    data = {"id": "probe", "url": args.url}
    if args.username:
        data["username"] = args.username
    if args.password_env:
        data["password"] = {"env": args.password_env}
    elif args.password_file:
        data["password"] = {"file": args.password_file}
    try:
        cfg = CameraConfig(**data)
    except ValidationError as e:
        print(f"error: {e.errors()[0]['msg']}", file=sys.stderr)
        return 2
    res = probe_camera(cfg, timeout_s=args.timeout, snapshot_path=args.snapshot, measure_s=args.measure)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
    else:
        print(("OK    " if res["ok"] else "FAIL  ") + res["summary"])
        if res["fix"]:
            print("      fix: " + res["fix"])
        if res["detail"].get("snapshot"):
            print(f"      snapshot saved to {res['detail']['snapshot']} (try: edge detect {res['detail']['snapshot']})")
    return 0 if res["ok"] else 1


def register_probe(probe_sub) -> None:
    p = probe_sub.add_parser("camera", help="open a camera URL (rtsp://, http:// MJPEG or snapshot, file://), "
                                            "report resolution and frame rate")
    p.add_argument("url", help="e.g. rtsp://192.168.1.64:554/Streaming/Channels/102 (Hikvision sub-stream), "
                               "rtsp://HOST:554/cam/realmonitor?channel=1&subtype=1 (Dahua sub-stream)")
    p.add_argument("--username")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    pw.add_argument("--password-file", metavar="FILE", help="read the password from this file")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--measure", type=float, default=2.5, metavar="S",
                   help="seconds of frames to read for the frame rate (default 2.5)")
    p.add_argument("--snapshot", metavar="FILE.jpg", help="save one decoded frame")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_probe)
