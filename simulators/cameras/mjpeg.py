"""A simulated IP camera over HTTP: an MJPEG stream and a JPEG snapshot URL, with faults on demand.

    sim = MjpegCamera(Scene.from_video("tests/data/intel_worker_zone.mp4")).start()
    sim.stream_url        # http://127.0.0.1:PORT/stream.mjpeg   (multipart/x-mixed-replace)
    sim.snapshot_url      # http://127.0.0.1:PORT/snapshot.jpg
    sim.stall(3)          # connections stay open, no bytes for 3 s (what a wedged camera does)
    sim.drop()            # close every open connection now (camera reboot, Wi-Fi bridge hiccup)
    sim.stop(); sim.start()   # camera gone / back on the same port
    sim.broken_every = 5  # every 5th part is a truncated JPEG

It runs aiohttp on its own event loop in a background thread, so tests and the gateway under test do not
share a loop with it. A producer advances the frame number at the scene's fps whether or not anyone watches
(a real camera does not wait for its clients), and every client gets the current frame.
"""
from __future__ import annotations

import asyncio
import threading
import time

from aiohttp import web

from .scene import Scene

BOUNDARY = "edgeframe"


class MjpegCamera:
    def __init__(self, scene: Scene, host: str = "127.0.0.1", port: int = 0, username: str | None = None,
                 password: str | None = None, content_length: bool = True):
        self.scene = scene
        self.content_length = content_length  # some cheap cameras send parts without Content-Length
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.broken_every = 0
        self.frame_number = 0
        self.parts_sent = 0
        self.snapshots_served = 0
        self.connections = 0
        self._stalled_until = 0.0
        self._stall_forever = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tick: asyncio.Condition | None = None
        self._requests: dict[int, web.BaseRequest] = {}  # aiohttp requests are not hashable
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    # ---- control (any thread) -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        return self.base_url + "/stream.mjpeg"

    @property
    def snapshot_url(self) -> str:
        return self.base_url + "/snapshot.jpg"

    @property
    def stalled(self) -> bool:
        return self._stall_forever or time.monotonic() < self._stalled_until

    def stall(self, seconds: float | None = None) -> None:
        """Stop sending (connections stay open) for `seconds`, or until resume() when None."""
        if seconds is None:
            self._stall_forever = True
        else:
            self._stalled_until = time.monotonic() + seconds

    def resume(self) -> None:
        self._stall_forever = False
        self._stalled_until = 0.0

    def drop(self) -> None:
        """Close every open client connection (the server keeps accepting new ones)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drop_all)

    def start(self, timeout: float = 10.0) -> "MjpegCamera":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._serve, name=f"mjpeg-sim-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("MJPEG simulator did not start")
        if self._start_error is not None:
            raise RuntimeError(f"MJPEG simulator failed to start: {self._start_error}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Camera gone: close the listening socket and all connections. start() brings it back on the same port."""
        if self._loop is None or self._thread is None:
            return
        loop, stopped = self._loop, self._stopped
        loop.call_soon_threadsafe(stopped.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "MjpegCamera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- server (its own thread and loop) ----------------------------------------------------------------
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # reported to start() if it happens before ready
            self._start_error = e
            self._ready.set()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:  # handlers parked in a stall or waiting for the next frame
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _main(self) -> None:
        self._tick = asyncio.Condition()
        self._stopped = asyncio.Event()
        app = web.Application()
        app.router.add_get("/stream.mjpeg", self._stream)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        producer = asyncio.create_task(self._produce())
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            producer.cancel()
            self._drop_all()
            await self._runner.cleanup()

    async def _produce(self) -> None:
        period = 1.0 / self.scene.fps
        nxt = time.monotonic()
        while True:
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            self.frame_number += 1
            async with self._tick:
                self._tick.notify_all()

    def _drop_all(self) -> None:
        for req in list(self._requests.values()):
            if req.transport is not None:
                req.transport.abort()
        self._requests.clear()

    def _authorised(self, request: web.Request) -> bool:
        if not self.username:
            return True
        try:
            from aiohttp import BasicAuth

            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return auth.login == self.username and auth.password == (self.password or "")

    def _deny(self) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="simulated camera"'})

    async def _wait_unstalled(self) -> None:
        while self.stalled:
            await asyncio.sleep(0.02)

    def _part_bytes(self, number: int) -> bytes:
        data = self.scene.jpeg(number)
        if self.broken_every and self.parts_sent % self.broken_every == self.broken_every - 1:
            data = data[: len(data) // 2]  # truncated JPEG: what a camera sends when its encoder hiccups
        return data

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="simulated camera: /stream.mjpeg /snapshot.jpg\n")

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._deny()
        self._requests[id(request)] = request
        try:
            await self._wait_unstalled()
            data = self._part_bytes(self.frame_number)
            self.snapshots_served += 1
            return web.Response(body=data, content_type="image/jpeg")
        finally:
            self._requests.pop(id(request), None)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._deny()
        self.connections += 1
        self._requests[id(request)] = request
        resp = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            sent = -1
            while True:
                async with self._tick:
                    await self._tick.wait_for(lambda: self.frame_number != sent)
                await self._wait_unstalled()
                sent = self.frame_number
                data = self._part_bytes(sent)
                length = f"Content-Length: {len(data)}\r\n" if self.content_length else ""
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n{length}\r\n".encode()
                await resp.write(head + data + b"\r\n")
                self.parts_sent += 1
        except ConnectionError:  # client went away or drop() aborted the connection
            pass
        finally:
            self._requests.pop(id(request), None)
        return resp
