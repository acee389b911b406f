"""Run a simulated camera until Ctrl-C; type `stall N`, `resume`, `drop` (MJPEG) on stdin to inject faults."""
from __future__ import annotations

import argparse
import sys
import time

from .mjpeg import MjpegCamera
from .rtsp import RtspCamera, rtsp_available
from .scene import Scene


def _scene(args) -> Scene:
    if args.image:
        steps = []
        for spec in args.image:
            path, _, secs = spec.rpartition(":")
            steps.append((path, float(secs)) if path else (spec, 5.0))
        return Scene.scripted(steps, fps=args.fps or 10)
    return Scene.from_video(args.video, args.width, args.height, args.fps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulators.cameras", description=__doc__)
    ap.add_argument("kind", choices=["mjpeg", "rtsp"])
    ap.add_argument("--video", default="tests/data/intel_worker_zone.mp4")
    ap.add_argument("--image", action="append", metavar="PATH[:SECONDS]", help="scripted scene (MJPEG only)")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--fps", type=float)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--username")
    ap.add_argument("--password")
    args = ap.parse_args(argv)
    if args.kind == "mjpeg":
        cam = MjpegCamera(_scene(args), args.host, args.port, args.username, args.password).start()
        print(f"MJPEG {cam.stream_url}\nsnapshot {cam.snapshot_url}", flush=True)
    else:
        ok, why = rtsp_available()
        if not ok:
            print(f"error: {why}", file=sys.stderr)
            return 2
        cam = RtspCamera(video=args.video, width=args.width, height=args.height, fps=args.fps, port=args.port or None,
                         host=args.host).start()
        print(f"RTSP {cam.url}", flush=True)
    try:
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "stall":
                cam.stall(float(cmd[1]) if len(cmd) > 1 else None)
            elif cmd[0] == "resume":
                cam.resume()
            elif cmd[0] == "drop" and isinstance(cam, MjpegCamera):
                cam.drop()
            elif cmd[0] == "quit":
                break
        else:
            while True:  # stdin closed (running in the background): serve until killed
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cam.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
