"""Live updates for the console with Server-Sent Events (one-way server -> browser is all the console needs;
EventSource reconnects by itself and sends the session cookie, so no WebSocket protocol is needed).

One bus subscription feeds every connected browser. Each browser has a bounded queue: a phone on a bad
link that falls behind loses events (counted) and gets a `resync` message, telling the page to reload its
lists from the API instead of showing a silently incomplete picture.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from edge.events import Event

log = logging.getLogger("edge.web.sse")

CLIENT_QUEUE = 500
MAX_CLIENTS = 64  # each open console tab holds one; bounded so a misbehaving client cannot exhaust the gateway
HEARTBEAT_S = 15.0
_CLOSE = object()


def event_summary(e: Event) -> dict[str, Any]:
    return {"id": e.id, "ts": e.ts, "ts_ms": e.ts_ms, "kind": e.kind, "source": e.source,
            "severity": e.severity.value, "payload": e.payload, "media": [m.media_id for m in e.media]}


class _Client:
    def __init__(self, topics: set[str]):
        self.topics = topics
        self.queue: asyncio.Queue = asyncio.Queue(CLIENT_QUEUE)
        self.lagged = False
        self.dropped = 0


class SseHub:
    def __init__(self) -> None:
        self.clients: set[_Client] = set()
        self.sent = 0
        self.dropped = 0

    def on_event(self, e: Event) -> None:
        """Bus callback (sync, cheap): fan out to every browser queue."""
        if not self.clients:
            return
        summary = None
        for c in list(self.clients):
            topic = "alert" if e.kind == "alert" else "event"
            if topic not in c.topics and not (topic == "alert" and "event" in c.topics):
                continue
            summary = summary or event_summary(e)
            self._put(c, topic, summary)

    def _put(self, c: _Client, topic: str, data: Any) -> None:
        try:
            c.queue.put_nowait((topic, data))
        except asyncio.QueueFull:
            c.dropped += 1
            self.dropped += 1
            c.lagged = True

    def close_all(self) -> None:
        for c in list(self.clients):
            while True:
                try:
                    c.queue.put_nowait(_CLOSE)
                    break
                except asyncio.QueueFull:
                    c.queue.get_nowait()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if len(self.clients) >= MAX_CLIENTS:
            return web.json_response({"error": f"too many live connections (at most {MAX_CLIENTS})"}, status=503)
        topics = set((request.query.get("topics") or "alert,event").split(","))
        topics &= {"alert", "event"}
        client = _Client(topics or {"alert"})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        self.clients.add(client)
        try:
            await resp.write(b"retry: 3000\nevent: hello\ndata: {}\n\n")
            while True:
                try:  # asyncio.timeout: wait_for can swallow a racing cancel on Python 3.11
                    async with asyncio.timeout(HEARTBEAT_S):
                        item = await client.queue.get()
                except TimeoutError:
                    await resp.write(b": ping\n\n")
                    continue
                if item is _CLOSE:
                    break
                if client.lagged:
                    client.lagged = False
                    await resp.write(b"event: resync\ndata: {}\n\n")
                topic, data = item
                blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
                await resp.write(f"event: {topic}\ndata: {blob}\n\n".encode("utf-8"))
                self.sent += 1
        except ConnectionResetError:  # the browser went away
            pass
        finally:
            self.clients.discard(client)
        return resp
