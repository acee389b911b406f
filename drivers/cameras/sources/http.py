"""HTTP cameras: MJPEG streams (multipart/x-mixed-replace) and JPEG snapshot URLs, told apart by Content-Type.

urllib (stdlib) does the HTTP and the Basic/Digest authentication Hikvision and Dahua ask for. The multipart
reader is hand-written (about 50 lines): the capture worker is a blocking thread, and the async multipart
readers (aiohttp) would need an event loop per camera thread for what is "read lines until the boundary".
"""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import cv2
import numpy as np

from . import Source, SourceError, SourceInfo, redact

MAX_PART_BYTES = 8 * 1024 * 1024  # a 4K JPEG is < 3 MB; anything bigger is a broken stream, not a frame
MAX_LINE = 64 * 1024
USER_AGENT = "edge-gateway-camera/1"


def decode_jpeg(data: bytes | None) -> np.ndarray | None:
    """BGR image, or None for anything that is not a complete JPEG (truncated parts are rejected, not shown
    half-grey: a grey half-frame would look like motion to the gate)."""
    if not data or len(data) < 4 or data[:2] != b"\xff\xd8":
        return None
    end = data.rfind(b"\xff\xd9")
    if end < 0 or end < len(data) - 64:  # cameras may pad a little after EOI, never kilobytes
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


class HttpSource(Source):
    def __init__(self, url: str, user: str | None, password: str | None, open_timeout_s: float,
                 read_timeout_s: float, poll_fps: float = 5.0):
        self.url = redact(url)  # credentials in the URL go to the auth handlers, not into the request line
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.poll_period = 1.0 / max(0.1, poll_fps)
        handlers: list = []
        if user:
            mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            mgr.add_password(None, self.url, user, password or "")
            handlers = [urllib.request.HTTPDigestAuthHandler(mgr), urllib.request.HTTPBasicAuthHandler(mgr)]
        self._opener = urllib.request.build_opener(*handlers)
        self.kind = "http"
        self._resp = None
        self._boundary: bytes | None = None
        self._at_headers = False  # True when the boundary line of the next part was already consumed
        self._data: bytes | None = None
        self._next_poll = 0.0

    # ---- HTTP -----------------------------------------------------------------------------------------------
    def _request(self, timeout: float):
        req = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        try:
            return self._opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            hint = " (check username/password)" if e.code in (401, 403) else ""
            raise SourceError(f"{redact(self.url)}: HTTP {e.code} {e.reason}{hint}") from None
        except urllib.error.URLError as e:
            raise SourceError(f"{redact(self.url)}: {e.reason}") from None
        except (OSError, ValueError) as e:  # timeouts, resets, malformed status lines
            raise SourceError(f"{redact(self.url)}: {type(e).__name__}: {e}") from None

    def open(self) -> SourceInfo:
        resp = self._request(self.open_timeout_s)
        ctype = resp.headers.get_content_type()
        if ctype.startswith("multipart/"):
            boundary = resp.headers.get_param("boundary")
            if not boundary:
                resp.close()
                raise SourceError(f"{redact(self.url)}: multipart stream without a boundary")
            b = boundary.encode("latin-1")
            self._boundary = b[2:] if b.startswith(b"--") else b
            self._resp = resp
            self.kind = "mjpeg"
            self._set_read_timeout(resp)
            return SourceInfo("mjpeg")
        if ctype.startswith("image/") or ctype == "application/octet-stream":
            self.kind = "snapshot"
            self._data_first = self._read_body(resp)
            self._next_poll = time.monotonic() + self.poll_period
            return SourceInfo("snapshot", fps=round(1.0 / self.poll_period, 3))
        resp.close()
        raise SourceError(f"{redact(self.url)} answered {ctype}, not an MJPEG stream or a JPEG image")

    def fetch_once(self) -> bytes:
        """One JPEG from a snapshot URL, as the camera encoded it (full resolution, not re-encoded)."""
        info = self.open()
        if info.kind != "snapshot":
            self.close()
            raise SourceError(f"{redact(self.url)} is a {info.kind} stream, not a snapshot URL")
        data, self._data_first = self._data_first, None
        if decode_jpeg(data) is None:
            raise SourceError(f"{redact(self.url)} returned {len(data)} bytes that are not a complete JPEG")
        return data

    def _set_read_timeout(self, resp) -> None:
        # urllib applies one timeout to connect and every recv; after the connect the read timeout rules.
        # http.client keeps the socket on resp.fp.raw._sock: private, hence the guarded lookup.
        sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(self.read_timeout_s)

    def _read_body(self, resp) -> bytes:
        try:
            data = resp.read(MAX_PART_BYTES + 1)
        except (OSError, ValueError) as e:
            raise SourceError(f"{redact(self.url)}: snapshot read failed: {type(e).__name__}: {e}") from None
        finally:
            resp.close()
        if len(data) > MAX_PART_BYTES:
            raise SourceError(f"{redact(self.url)}: snapshot larger than {MAX_PART_BYTES} bytes")
        return data

    # ---- frames ---------------------------------------------------------------------------------------------
    def grab(self) -> None:
        if self.interrupted:
            raise SourceError("interrupted by the watchdog")
        if self.kind == "mjpeg":
            self._data = self._read_part()
        elif self.kind == "snapshot":
            first = getattr(self, "_data_first", None)
            if first is not None:
                self._data, self._data_first = first, None
                return
            self._wait_poll()
            self._data = self._read_body(self._request(self.read_timeout_s))
        else:
            raise SourceError("not open")

    def _wait_poll(self) -> None:
        while True:
            if self.interrupted:
                raise SourceError("interrupted by the watchdog")
            delay = self._next_poll - time.monotonic()
            if delay <= 0:
                break
            time.sleep(min(delay, 0.05))
        self._next_poll = max(self._next_poll + self.poll_period, time.monotonic())

    def _readline(self) -> bytes:
        try:
            line = self._resp.readline(MAX_LINE)
        except (TimeoutError, socket.timeout):
            raise SourceError(f"no data from {redact(self.url)} for {self.read_timeout_s:g} s") from None
        except (OSError, ValueError) as e:
            raise SourceError(f"{redact(self.url)}: {type(e).__name__}: {e}") from None
        if not line:
            raise SourceError(f"{redact(self.url)} closed the stream")
        if self.interrupted:
            raise SourceError("interrupted by the watchdog")
        return line

    def _is_boundary(self, line: bytes) -> bool:
        s = line.strip()
        return s == b"--" + self._boundary or s == b"--" + self._boundary + b"--" or s == self._boundary

    def _read_part(self) -> bytes:
        if not self._at_headers:
            for _ in range(64):  # skip preamble / blank lines between parts
                if self._is_boundary(self._readline()):
                    break
            else:
                raise SourceError(f"{redact(self.url)}: no multipart boundary found")
        self._at_headers = False
        length = None
        for _ in range(64):
            line = self._readline().strip()
            if not line:
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = None
        else:
            raise SourceError(f"{redact(self.url)}: part headers never end")
        if length is not None:
            if not 0 <= length <= MAX_PART_BYTES:
                raise SourceError(f"{redact(self.url)}: part of {length} bytes")
            return self._read_exact(length)
        # No Content-Length (some cheap cameras): collect lines until the next boundary.
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self._readline()
            if line.startswith(b"--") and self._is_boundary(line):
                self._at_headers = True
                data = b"".join(chunks)
                return data[:-2] if data.endswith(b"\r\n") else data
            chunks.append(line)
            size += len(line)
            if size > MAX_PART_BYTES:
                raise SourceError(f"{redact(self.url)}: part without end")

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if self.interrupted:
                raise SourceError("interrupted by the watchdog")
            try:
                chunk = self._resp.read1(min(65536, n - len(buf)))
            except (TimeoutError, socket.timeout):
                raise SourceError(f"no data from {redact(self.url)} for {self.read_timeout_s:g} s") from None
            except (OSError, ValueError) as e:
                raise SourceError(f"{redact(self.url)}: {type(e).__name__}: {e}") from None
            if not chunk:
                raise SourceError(f"{redact(self.url)} closed the stream in the middle of a frame")
            buf += chunk
        return bytes(buf)

    def retrieve(self) -> np.ndarray | None:
        return decode_jpeg(self._data)

    def close(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except Exception:  # closing a half-dead socket may raise; it is going away anyway
                pass
            self._resp = None
