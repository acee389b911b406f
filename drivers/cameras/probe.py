"""`edge doctor` / `edge probe camera URL`: does this camera deliver frames, at what size and rate?

probe_camera() opens the camera's URL exactly as the capture worker does, reads frames for ~2.5 s to
measure the real frame rate, decodes one, and returns
    {"ok", "summary", "fix", "detail": {"width", "height", "fps", "source", "frames", "decode_errors",
                                         "open_ms", "url"}}
with `fix` telling an installer what to change when it fails. It never raises and never takes much longer
than timeout_s (the reads run in a thread; a camera that hangs is reported, not waited for).
"""
from __future__ import annotations

import threading
import time

from .sources import SourceError, open_source, redact

MEASURE_S = 2.5
MEASURE_FRAMES = 400
SETTLE_S = 0.5


def _fix_for(error: str, url: str) -> str:
    e = error.lower()
    if "401" in e or "403" in e or "unauthori" in e:
        return "the camera refused the credentials: check username/password (cameras lock accounts after " \
               "several failures; wait and retry)"
    if "refused" in e:
        return "nothing listens on that port: check the IP address and port, and that RTSP/HTTP is enabled " \
               "on the camera (RTSP port is usually 554)"
    if "404" in e:
        return "wrong path: Hikvision sub-stream is /Streaming/Channels/102, Dahua " \
               "/cam/realmonitor?channel=1&subtype=1"
    if "text/html" in e or "not an mjpeg" in e:
        return "that URL is a web page, not a stream: use the camera's MJPEG or snapshot URL, or RTSP"
    if "no such video file" in e or "cannot open video file" in e:
        return "check the file path (file:///absolute/path.mp4)"
    if url.startswith("rtsp") and "cannot open" in e:
        return "check IP, port 554, path (Hikvision /Streaming/Channels/102, Dahua " \
               "/cam/realmonitor?channel=1&subtype=1) and credentials; try the URL in VLC"
    if "timed out" in e or "no answer" in e or "no data" in e or "no frame within" in e or "timeout" in e:
        return "the camera did not answer in time: check network/VLAN/firewall, and that the address is the " \
               "camera's, not the NVR's"
    if "undecodable" in e or "decode" in e:
        return "frames arrive but cannot be decoded: set the sub-stream to H.264 (not H.265/Smart Codec) or MJPEG"
    return "check the URL and that the camera is powered and reachable from the gateway"


def probe_camera(camera_cfg, timeout_s: float = 10, snapshot_path: str | None = None,
                 measure_s: float = MEASURE_S) -> dict:
    """`snapshot_path`: also save the decoded frame there as JPEG (for `edge detect` on the real view).
    `measure_s`: how long frames are read to measure the rate (the first SETTLE_S are not counted)."""
    url = redact(camera_cfg.url)
    camera_cfg = camera_cfg.model_copy(update={"open_timeout_s": min(camera_cfg.open_timeout_s, timeout_s),
                                               "read_timeout_s": min(camera_cfg.read_timeout_s, timeout_s)})
    result: dict = {}
    detail = {"url": url, "width": None, "height": None, "fps": None, "source": None, "frames": 0,
              "decode_errors": 0, "open_ms": None}

    def work() -> None:
        try:
            src = open_source(camera_cfg)
        except Exception as e:
            result["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, SourceError) else str(e)
            return
        try:
            t0 = time.monotonic()
            info = src.open()
            detail["open_ms"] = round((time.monotonic() - t0) * 1000)
            detail["source"] = info.kind
            detail["fps"] = info.fps
            img = None
            arrivals: list[float] = []
            n = 0
            deadline = time.monotonic() + measure_s
            while n < MEASURE_FRAMES and time.monotonic() < deadline:
                src.grab()
                arrivals.append(time.monotonic())
                n += 1
                if img is None:
                    img = src.retrieve()
                    if img is None:
                        detail["decode_errors"] += 1
                if src.interrupted:
                    break
            detail["frames"] = n
            # RTSP delivers the frames FFmpeg buffered while probing the stream in one burst right after
            # open(); the rate is measured on the frames after SETTLE_S.
            steady = [t for t in arrivals if t >= arrivals[0] + SETTLE_S] if arrivals else []
            if len(steady) >= 3 and steady[-1] > steady[0]:
                detail["stream_fps"] = info.fps
                detail["fps"] = round((len(steady) - 1) / (steady[-1] - steady[0]), 2)
            if img is None:
                result["error"] = f"{n} frame(s) received but none was decodable"
                return
            detail["height"], detail["width"] = int(img.shape[0]), int(img.shape[1])
            result["image"] = img
        except SourceError as e:
            result["error"] = str(e)
        except Exception as e:  # probe must report, never crash `edge doctor`
            result["error"] = f"{type(e).__name__}: {e}"
        finally:
            try:
                src.close()
            except Exception:
                pass
            result["src"] = src

    t = threading.Thread(target=work, name="camera-probe", daemon=True)
    t.start()
    t.join(timeout_s + measure_s + 1)
    if t.is_alive():
        src = result.get("src")
        if src is not None:
            src.interrupt()
        return {"ok": False, "summary": f"{url}: no answer within {timeout_s:g} s",
                "fix": _fix_for("timed out", camera_cfg.url), "detail": detail}
    if "error" in result:
        err = result["error"]
        return {"ok": False, "summary": err if url in err else f"{url}: {err}", "fix": _fix_for(result["error"], camera_cfg.url),
                "detail": detail}
    fps = detail["fps"]
    summary = (f"{url}: {detail['source']} {detail['width']}x{detail['height']}"
               + (f" at {fps:g} fps" if fps else "") + f", first frame after {detail['open_ms']} ms")
    fix = ""
    if detail["width"] and detail["width"] > 1280:
        fix = ("works, but this is a main stream: use the sub-stream (Hikvision /Streaming/Channels/102, Dahua "
               "subtype=1) - decoding full HD costs 4-8x the CPU for no detection gain at 640x360")
    elif fps and fps < getattr(camera_cfg, "detect_fps", 5) * 0.9:
        fix = f"the camera sends {fps:g} fps, below detect_fps {camera_cfg.detect_fps:g}: raise its frame rate"
    if snapshot_path:
        import cv2

        if cv2.imwrite(str(snapshot_path), result["image"]):
            detail["snapshot"] = str(snapshot_path)
        else:
            fix = (fix + "; " if fix else "") + f"could not write snapshot to {snapshot_path}"
    return {"ok": True, "summary": summary, "fix": fix, "detail": detail}
