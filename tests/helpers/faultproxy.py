"""A small asyncio TCP proxy that injects link faults between a client and a broker.

Modes (apply to open and new connections at once):
  pass      - forward both directions
  blackhole - read and discard both directions (a dead link that still looks open: no FIN, no RST)
  down_only - forward client->broker, discard broker->client (PUBACKs and PINGRESPs vanish: half-open)
  refuse    - reset every new connection at once (broker unreachable); open ones are left alone
  drop()    - close every open connection now (the next ones pass again)
Hand-written because it is ~60 lines and the fault modes are exactly what the tests need.
"""
from __future__ import annotations

import asyncio


class FaultProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.discarded = {"up": 0, "down": 0}

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def set(self, mode: str) -> None:
        assert mode in ("pass", "blackhole", "down_only", "refuse"), mode
        self.mode = mode

    def drop(self) -> None:
        for a, b in list(self._conns):
            for w in (a, b):
                w.transport.abort()
        self._conns.clear()

    async def stop(self) -> None:
        self.drop()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            cw.transport.abort()
            return
        try:
            br, bw = await asyncio.open_connection(*self.target)
        except OSError:
            cw.transport.abort()
            return
        pair = (cw, bw)
        self._conns.add(pair)
        await asyncio.gather(self._pump(cr, bw, "up"), self._pump(br, cw, "down"), return_exceptions=True)
        self._conns.discard(pair)
        for w in pair:
            w.transport.abort()

    def _blocked(self, direction: str) -> bool:
        return self.mode == "blackhole" or (self.mode == "down_only" and direction == "down")

    async def _pump(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, direction: str) -> None:
        try:
            while data := await r.read(65536):
                if self._blocked(direction):
                    self.discarded[direction] += len(data)
                    continue
                w.write(data)
                await w.drain()
        finally:
            w.transport.abort()  # one side gone: tear the other down too (as a NAT would, eventually)
