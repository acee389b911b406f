"""Start and control the RTSP camera simulator (rtsp_server.py) as a /usr/bin/python3 subprocess.

    ok, why = rtsp_available()
    with RtspCamera(video="tests/data/intel_worker_zone.mp4") as cam:
        cam.url            # rtsp://127.0.0.1:PORT/stream
        cam.stall(3)       # session stays up, no RTP for 3 s
        cam.stop(); cam.start()   # camera gone, back on the same port
"""
from __future__ import annotations

import functools
import os
import queue
import signal
import socket
import subprocess
import threading
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")

_CHECK = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in ("appsrc", "h264parse", "rtph264pay", "decodebin", "videoconvert", "videoscale")
           if not Gst.ElementFactory.find(e)]
if not (Gst.ElementFactory.find("x264enc") or Gst.ElementFactory.find("openh264enc")):
    missing.append("x264enc|openh264enc")
print("missing:" + ",".join(missing) if missing else "ok")
"""


@functools.lru_cache(maxsize=1)
def rtsp_available() -> tuple[bool, str]:
    """(True, "") when the RTSP simulator can run here, else (False, the reason and what to install)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return False, f"{SYSTEM_PYTHON} not found (the RTSP simulator needs Debian's python3-gi)"
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"cannot run {SYSTEM_PYTHON}: {e}"
    line = (out.stdout.strip().splitlines() or [""])[-1]
    if out.returncode != 0:
        err = (out.stderr.strip().splitlines() or ["?"])[-1]
        return False, (f"gst-rtsp-server not usable from {SYSTEM_PYTHON} ({err}); install python3-gi "
                       "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly gstreamer1.0-plugins-good")
    if line != "ok":
        return False, f"GStreamer elements {line} not installed (gstreamer1.0-plugins-ugly/-good/-bad)"
    return True, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspCamera:
    def __init__(self, video: str | Path | None = None, pattern: str = "ball", width: int | None = None,
                 height: int | None = None, fps: float | None = None, port: int | None = None,
                 host: str = "127.0.0.1", path: str = "/stream"):
        self.video = str(video) if video else None
        self.pattern = pattern
        self.width, self.height, self.fps = width, height, fps
        self.port = port or _free_port()  # fixed across stop()/start() so the camera comes back at its URL
        self.host = host
        self.path = path
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}{self.path}"

    def start(self, timeout: float = 30.0) -> "RtspCamera":
        if self.proc is not None and self.proc.poll() is None:
            return self
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--host", self.host,
               "--path", self.path]
        if self.video:
            cmd += ["--video", self.video]
        else:
            cmd += ["--pattern", self.pattern]
        for flag, v in (("--width", self.width), ("--height", self.height), ("--fps", self.fps)):
            if v:
                cmd += [flag, str(v)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, start_new_session=True)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc, self._lines), daemon=True).start()
        seen = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"RTSP simulator did not start in {timeout} s: {' | '.join(seen[-5:])}")
            if line is None:
                raise RuntimeError(f"RTSP simulator exited: {' | '.join(seen[-5:])}")
            seen.append(line)
            if line.startswith("READY "):
                return self
            if line.startswith("ERROR"):
                self.stop()
                raise RuntimeError(f"RTSP simulator: {line}")

    @staticmethod
    def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))
        lines.put(None)  # type: ignore[arg-type]

    def _send(self, command: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("RTSP simulator is not running")
        self.proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def stall(self, seconds: float | None = None) -> None:
        self._send("stall" + (f" {seconds}" if seconds is not None else ""))

    def resume(self) -> None:
        self._send("resume")

    def stop(self, timeout: float = 5.0) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)  # its own session: only this simulator's process group
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "RtspCamera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
