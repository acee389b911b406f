"""Frame sources: one class per transport, all with the same small blocking interface.

A source is used by exactly one capture thread at a time:

    info = src.open()          # blocks at most open_timeout_s; raises SourceError
    while True:
        src.grab()             # next frame from the wire, blocks at most read_timeout_s; raises SourceError
        img = src.retrieve()   # decode the grabbed frame -> BGR ndarray, or None when it is broken
    src.close()

grab() and retrieve() are split so the capture thread can keep up with the camera's frame rate while only
decoding the frames the pipeline actually wants (most of them are dropped at a 5 fps detect rate).
`interrupt()` may be called from another thread (the watchdog) to make a blocked grab() give up as soon as
the transport allows.
"""
from __future__ import annotations

import abc
import dataclasses
import urllib.parse
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.config.cameras import CameraConfig


class SourceError(Exception):
    """The stream cannot be opened or stopped delivering; the capture worker reconnects."""


@dataclasses.dataclass
class SourceInfo:
    kind: str  # rtsp | mjpeg | snapshot | file
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class Source(abc.ABC):
    kind = "source"

    @abc.abstractmethod
    def open(self) -> SourceInfo: ...

    @abc.abstractmethod
    def grab(self) -> None: ...

    @abc.abstractmethod
    def retrieve(self) -> np.ndarray | None: ...

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        self._interrupted = True

    @property
    def interrupted(self) -> bool:
        return getattr(self, "_interrupted", False)


def redact(url: str) -> str:
    """The URL without credentials, for logs, health and events."""
    p = urllib.parse.urlsplit(url)
    if p.username is None and p.password is None:
        return url
    host = p.hostname or ""
    if p.port:
        host += f":{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, p.query, p.fragment))


def credentials(cfg: "CameraConfig") -> tuple[str | None, str | None]:
    """username/password from the config (password resolved from its Secret), else from the URL."""
    p = urllib.parse.urlsplit(cfg.url)
    user = cfg.username if cfg.username is not None else (urllib.parse.unquote(p.username) if p.username else None)
    password = cfg.password.resolve() if cfg.password is not None else (
        urllib.parse.unquote(p.password) if p.password else None)
    return user, password


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """rtsp://user:pass@host/... with both parts percent-encoded (passwords often contain @ or #)."""
    if not user:
        return url
    p = urllib.parse.urlsplit(url)
    auth = urllib.parse.quote(user, safe="")
    if password:
        auth += ":" + urllib.parse.quote(password, safe="")
    host = p.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if p.port:
        host += f":{p.port}"
    return urllib.parse.urlunsplit((p.scheme, f"{auth}@{host}", p.path, p.query, p.fragment))


def open_source(cfg: "CameraConfig", url: str | None = None) -> Source:
    """The Source for a camera's URL (not opened yet). `url` overrides cfg.url (e.g. the snapshot URL)."""
    url = url or cfg.url
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("rtsp", "rtsps"):
        from .opencv import RtspSource

        user, password = credentials(cfg)
        return RtspSource(with_credentials(url, user, password), cfg.open_timeout_s, cfg.read_timeout_s)
    if scheme in ("http", "https"):
        from .http import HttpSource

        user, password = credentials(cfg)
        return HttpSource(url, user, password, cfg.open_timeout_s, cfg.read_timeout_s,
                          poll_fps=cfg.detect_fps)
    if scheme == "file":
        from .opencv import FileSource

        return FileSource(file_path(url), loop=True)
    raise SourceError(f"{redact(url)}: unsupported scheme {scheme!r}")


def file_path(url: str) -> str:
    """file:///abs/path or file:relative/path -> filesystem path."""
    p = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(p.path)
    if p.netloc and p.netloc != "localhost":  # file://relative/x is a common typo for file:///relative/x
        path = p.netloc + path
    return path
