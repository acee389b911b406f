"""One capture worker per camera: a thread doing blocking reads, a one-frame slot to asyncio, and a watchdog.

Threads do only I/O and decoding (OpenCV and urllib block; they release the GIL while they wait). Everything
that involves time decisions - reconnect backoff, stall detection, offline/online - runs in the asyncio
`supervise()` loop on the injected clock, so it is the same code in production and under a FakeClock.

The slot holds one frame. The thread decodes a frame only when the pipeline is waiting for one, so at a 5 fps
detect rate from a 25 fps camera four of five frames are read off the wire (keeping the stream live and the
watchdog fed) but never decoded; nothing ever queues.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
import time
from typing import Callable

import numpy as np

from edge.clock import Clock
from edge.config.base import SecretError

from .sources import Source, SourceError, SourceInfo

log = logging.getLogger("drivers.cameras.capture")


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray  # BGR, camera resolution
    seq: int  # frames grabbed by the worker when this one was decoded
    session: int  # connection number (changes after every reconnect)
    mono: float  # time.monotonic() at decode (thread side; for latency measurements only)


class FrameSlot:
    """Newest-frame-wins hand-off from one producer thread to asyncio consumers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._fresh = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.always = False  # decode every grabbed frame (snapshot-only use, tests)
        self.put_count = 0
        self.replaced = 0  # fresh frames overwritten before anyone took them

    def wants(self) -> bool:
        """True when a consumer is waiting: the producer decodes the next grabbed frame only then."""
        return self.always or bool(self._waiters)

    def put(self, frame: Frame) -> None:
        with self._lock:
            if self._fresh:
                self.replaced += 1
            self._frame = frame
            self._fresh = True
            self.put_count += 1
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that loop is closed (its consumer is gone)
                pass

    async def get(self) -> Frame:
        """The next frame newer than the last one taken (waits as long as it takes)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._fresh:
                    self._fresh = False
                    return self._frame  # type: ignore[return-value]
                fut = loop.create_future()
                self._waiters.append((loop, fut))
            try:
                await fut
            finally:
                with self._lock:
                    self._waiters = [(lp, f) for lp, f in self._waiters if f is not fut]

    def latest(self) -> Frame | None:
        """The last decoded frame, taken or not (snapshots)."""
        return self._frame


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class _Session:
    """One connection attempt: open, then grab until the source fails or the watchdog abandons it."""

    def __init__(self, number: int, factory: Callable[[], Source], worker: "CaptureWorker"):
        self.number = number
        self.factory = factory
        self.source: Source | None = None
        self.worker = worker
        self.phase = "opening"
        self.frames = 0
        self.error: str | None = None
        self.abandoned = False
        self.done = False
        self.thread = threading.Thread(target=self._run, name=f"cam-{worker.camera_id}-{number}", daemon=True)

    def abandon(self, why: str) -> None:
        self.abandoned = True
        self.error = self.error or why
        try:
            if self.source is not None:
                self.source.interrupt()
        except Exception:  # best effort: the thread notices `abandoned` on its next return anyway
            pass

    def _run(self) -> None:
        w = self.worker
        src: Source | None = None
        try:
            # Built here, not in the event loop: resolving a password file/env or parsing the URL can fail,
            # and that is a connection error to retry with backoff, not a crash of the camera component.
            src = self.source = self.factory()
            info = src.open()
            if self.abandoned:
                return
            w.info = info
            self.phase = "reading"
            while not self.abandoned:
                src.grab()
                if self.abandoned:
                    break
                self.frames += 1
                w.grabbed += 1
                if w.slot.wants():
                    img = src.retrieve()
                    if img is None:
                        w.decode_errors += 1  # broken JPEG / undecodable packet: counted, the stream goes on
                        w.last_decode_error = f"undecodable frame #{w.grabbed}"
                    elif not self.abandoned:
                        w.decoded += 1
                        w.slot.put(Frame(img, w.grabbed, self.number, time.monotonic()))
                else:
                    w.skipped += 1
        except (SourceError, SecretError) as e:  # SecretError: the camera password's env var/file is missing
            self.error = str(e)
        except Exception as e:  # a bug or an OpenCV surprise in one camera must not take the gateway down
            self.error = f"{type(e).__name__}: {e}"
            log.exception("capture thread failed", extra={"camera": w.camera_id})
        finally:
            try:
                if src is not None:
                    src.close()
            except Exception:
                log.exception("closing source failed", extra={"camera": w.camera_id})
            self.done = True


class RateMeter:
    """Events per second over a sliding window of (time, count) samples on the injected clock."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def sample(self, now: float, count: int) -> None:
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


StateCallback = Callable[[str, str, dict], None]  # (new_state, old_state, detail)


class CaptureWorker:
    """Capture for one camera: sessions (threads), reconnect backoff, stall watchdog, online/offline state."""

    def __init__(self, camera_id: str, source_factory: Callable[[], Source], *, offline_after_s: float = 10.0,
                 open_timeout_s: float = 10.0, read_timeout_s: float = 5.0, backoff_min_s: float = 1.0,
                 backoff_max_s: float = 30.0, on_state: StateCallback | None = None):
        self.camera_id = camera_id
        self.source_factory = source_factory
        self.offline_after_s = offline_after_s
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.on_state = on_state
        self.slot = FrameSlot()
        self.info: SourceInfo | None = None
        self.state = "connecting"  # connecting | online | offline | stopped
        self.state_since: float | None = None
        self.session: _Session | None = None
        self.sessions = 0
        self.stalls = 0
        self.grabbed = 0
        self.decoded = 0
        self.skipped = 0
        self.decode_errors = 0
        self.last_decode_error: str | None = None
        self.last_error: str | None = None
        self.last_frame_at: float | None = None  # clock.monotonic() of the last observed progress
        self.offline_since: float | None = None
        self.fps_in = RateMeter()
        self._abandoned: list[_Session] = []

    @property
    def reconnects(self) -> int:
        return max(0, self.sessions - 1)

    @property
    def zombie_threads(self) -> int:
        """Abandoned reads still blocked in a driver call (should drain to 0; counted to prove it)."""
        self._abandoned = [s for s in self._abandoned if s.thread.is_alive()]
        return len(self._abandoned)

    def _start_session(self) -> _Session:
        self.sessions += 1
        s = _Session(self.sessions, self.source_factory, self)
        self.session = s
        s.thread.start()
        return s

    def _set_state(self, new: str, now: float, detail: dict) -> None:
        old = self.state
        if new == old:
            return
        self.state = new
        self.state_since = now
        if self.on_state is not None:
            try:
                self.on_state(new, old, detail)
            except Exception:  # the event side failing must not stop capture
                log.exception("camera state callback failed", extra={"camera": self.camera_id})

    def tick_s(self) -> float:
        return max(0.02, min(0.25, self.offline_after_s / 4, self.read_timeout_s / 4))

    async def supervise(self, clock: Clock) -> None:
        """Run until cancelled: keep a session alive, reconnect with backoff, track online/offline."""
        tick = self.tick_s()
        start = clock.monotonic()
        self.state_since = start
        last_progress = start
        last_count = self.grabbed
        next_attempt = start
        backoff = self.backoff_min_s
        session_progress = start
        session_count = 0
        try:
            while True:
                now = clock.monotonic()
                s = self.session
                if s is None and now >= next_attempt:
                    s = self._start_session()
                    session_progress, session_count = now, 0
                elif s is not None:
                    if s.frames != session_count:
                        session_progress, session_count = now, s.frames
                    limit = self.open_timeout_s if s.phase == "opening" else self.read_timeout_s
                    # The source's own timeouts should fire first; this is the backstop for a driver call
                    # that ignores them (a half-open TCP connection, a trickling server).
                    if not s.done and now - session_progress > limit + max(1.0, limit * 0.5):
                        self.stalls += 1
                        s.abandon(f"stalled: no frame for {now - session_progress:.1f} s ({s.phase})")
                        self._abandoned.append(s)
                        s.done = True
                    if s.done:
                        self.session = None
                        if s.error:
                            self.last_error = s.error
                        if s.frames:  # it worked for a while: retry soon, and start the backoff over
                            backoff = delay = self.backoff_min_s
                        else:
                            delay, backoff = backoff, min(self.backoff_max_s, backoff * 2)
                        next_attempt = now + delay
                        log.info("camera session ended", extra={
                            "camera": self.camera_id, "session": s.number, "frames": s.frames,
                            "error": s.error, "retry_in_s": round(next_attempt - now, 2)})
                # availability
                self.fps_in.sample(now, self.grabbed)
                if self.grabbed != last_count:
                    last_count, last_progress = self.grabbed, now
                    self.last_frame_at = now
                    if self.state != "online":
                        offline_s = (now - self.offline_since) if self.offline_since is not None else None
                        self.offline_since = None
                        self._set_state("online", now, {"offline_s": offline_s})
                elif self.state != "offline" and now - last_progress >= self.offline_after_s:
                    self.offline_since = last_progress
                    self._set_state("offline", now, {
                        "reason": self.last_error or (self.session.error if self.session else None)
                        or f"no frames for {now - last_progress:.1f} s"})
                await clock.sleep(tick)
        finally:
            if self.session is not None:
                self.session.abandon("stopped")
                self._abandoned.append(self.session)
                self.session = None
            self.state = "stopped"

    def health(self) -> dict:
        s = self.session
        return {
            # not "state": the supervisor reports the component's own state under that key
            "camera_state": self.state, "source": self.info.kind if self.info else None,
            "source_width": self.info.width if self.info else None,
            "source_height": self.info.height if self.info else None,
            "source_fps": self.info.fps if self.info else None,
            "fps_in": round(self.fps_in.rate, 2), "frames": self.grabbed, "decoded": self.decoded,
            "skipped_undecoded": self.skipped, "decode_errors": self.decode_errors,
            "reconnects": self.reconnects, "stalls": self.stalls, "zombie_threads": self.zombie_threads,
            "phase": s.phase if s else "backoff", "last_error": self.last_error,
            "last_decode_error": self.last_decode_error,
        }
