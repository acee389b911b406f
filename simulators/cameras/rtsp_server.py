"""RTSP camera simulator on Debian's gst-rtsp-server (run with /usr/bin/python3: needs python3-gi and
gir1.2-gst-rtsp-server-1.0, which live outside the venv). Started and controlled by simulators/cameras/rtsp.py.

    /usr/bin/python3 simulators/cameras/rtsp_server.py --video clip.mp4 --port 8554 [--width 640 --height 360]
    /usr/bin/python3 simulators/cameras/rtsp_server.py --pattern ball --port 8554

The clip is decoded once (GStreamer decodebin) into raw frames, then pushed through appsrc -> x264enc ->
rtph264pay in a loop at its frame rate, like a camera's H.264 sub-stream at rtsp://127.0.0.1:PORT/stream.
Prints "READY <url>" when serving. Commands on stdin, one per line:
    stall SECONDS   stop pushing frames (the RTSP session stays up, no RTP arrives)
    resume          end a stall
    quit            exit
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def decode_clip(path: str, width: int | None, height: int | None) -> tuple[list[bytes], int, int, float]:
    """All frames of a (small) clip as raw I420 buffers, plus width, height and fps."""
    caps = "video/x-raw,format=I420" + (f",width={width},height={height}" if width and height else "")
    pipe = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! {caps} ! '
                            "appsink name=sink sync=false emit-signals=false max-buffers=0")
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    frames: list[bytes] = []
    w = h = 0
    fps = 0.0
    while True:
        sample = sink.emit("try-pull-sample", 10 * Gst.SECOND)
        if sample is None:
            break
        if not frames:
            s = sample.get_caps().get_structure(0)
            w, h = s.get_value("width"), s.get_value("height")
            ok, num, den = s.get_fraction("framerate")
            fps = num / den if ok and den and num else 0.0
        buf = sample.get_buffer()
        frames.append(buf.extract_dup(0, buf.get_size()))
    pipe.set_state(Gst.State.NULL)
    if not frames:
        raise SystemExit(f"rtsp_server: no frames decoded from {path}")
    return frames, w, h, fps or 10.0


class Feeder:
    """Shared state between the RTSP media pipelines and the stdin control thread."""

    def __init__(self, frames: list[bytes], fps: float):
        self.frames = frames
        self.fps = fps
        self.stalled_until = 0.0
        self.stall_forever = False

    def stalled(self) -> bool:
        return self.stall_forever or time.monotonic() < self.stalled_until


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, feeder: Feeder, width: int, height: int, encoder: str):
        super().__init__()
        self.feeder = feeder
        fps = feeder.fps
        self.num, self.den = (int(round(fps * 1000)), 1000)
        gop = max(1, int(round(fps)))
        enc = (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=600"
               if encoder == "x264enc" else f"openh264enc gop-size={gop} bitrate=600000")
        self.launch = (f"( appsrc name=src is-live=true format=time "
                       f"caps=video/x-raw,format=I420,width={width},height={height},framerate={self.num}/{self.den} "
                       f"! {enc} ! video/x-h264,profile=constrained-baseline ! h264parse "
                       f"! rtph264pay name=pay0 pt=96 config-interval=1 )")
        self.set_shared(True)

    def do_create_element(self, url):
        return Gst.parse_launch(self.launch)

    def do_configure(self, media):
        src = media.get_element().get_child_by_name("src")
        state = {"i": 0, "t0": None}
        src.connect("need-data", self._need_data, state)

    def _need_data(self, src, length, state):
        f = self.feeder
        while f.stalled():  # blocking the streaming thread is exactly what a wedged camera does
            time.sleep(0.02)
        i = state["i"]
        period = self.den / self.num
        if state["t0"] is None:
            state["t0"] = time.monotonic()
        delay = state["t0"] + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:  # after a stall: continue from now instead of bursting the backlog
            state["t0"] = time.monotonic() - i * period
        data = f.frames[i % len(f.frames)]
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = int(i * period * Gst.SECOND)
        buf.duration = int(period * Gst.SECOND)
        state["i"] = i + 1
        src.emit("push-buffer", buf)


class PatternFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, pattern: str, width: int, height: int, fps: int, encoder: str):
        super().__init__()
        enc = (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps}"
               if encoder == "x264enc" else f"openh264enc gop-size={fps}")
        self.launch = (f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},"
                       f"framerate={fps}/1 ! {enc} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )")
        self.set_shared(True)

    def do_create_element(self, url):
        return Gst.parse_launch(self.launch)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video")
    ap.add_argument("--pattern", default="ball")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--fps", type=float)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--path", default="/stream")
    args = ap.parse_args()
    Gst.init(None)
    encoder = "x264enc" if Gst.ElementFactory.find("x264enc") else "openh264enc"
    if not Gst.ElementFactory.find(encoder):
        print("ERROR no H.264 encoder (x264enc / openh264enc) installed", flush=True)
        return 3
    feeder = None
    if args.video:
        frames, w, h, fps = decode_clip(args.video, args.width, args.height)
        feeder = Feeder(frames, args.fps or fps)
        factory = ClipFactory(feeder, w, h, encoder)
    else:
        factory = PatternFactory(args.pattern, args.width or 640, args.height or 360, int(args.fps or 10), encoder)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", flush=True)
        return 2

    def control() -> None:
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "stall" and feeder is not None:
                if len(cmd) > 1:
                    feeder.stalled_until = time.monotonic() + float(cmd[1])
                else:
                    feeder.stall_forever = True
            elif cmd[0] == "resume" and feeder is not None:
                feeder.stall_forever, feeder.stalled_until = False, 0.0
            elif cmd[0] == "quit":
                break
        GLib.idle_add(loop.quit)

    threading.Thread(target=control, daemon=True).start()
    print(f"READY rtsp://{args.host}:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
