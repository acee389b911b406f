"""OSDP card reader on RS-485, the gateway in the control-panel (CP) role, through libosdp.

libosdp runs the protocol in its own thread (polling, sequence numbers, secure channel) and talks to the
port through a Channel; this driver gives it a pyserial port wrapped in a FilterChannel: every received
byte goes through our own frame parser (osdp_frame.py) first, and libosdp is handed only complete,
CRC-checked replies from its own PD. Bad CRCs, short frames, noise, echoes and other addresses are counted
per reader and dropped before libosdp sees them — on a single bad CRC libosdp itself would declare the PD
offline for 300 s, so one burst of line noise would otherwise flap device.offline/online. libosdp
re-sends a command whose reply was dropped, like after any lost reply. Events come back from the
libosdp thread and are handed to the asyncio loop.

Liveness is judged here, not by libosdp alone: libosdp needs ~8 s of silence before it declares a PD
offline and then waits minutes before probing again. The driver declares the reader offline after
`offline_after_s` without a valid reply and restarts the CP session with backoff (0.5 s ... reconnect_max_s),
which also covers the USB-RS485 adapter being unplugged: the port is closed and reopened until it is back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import serial
from osdp import CardFormat, Channel, ControlPanel, Event as OsdpEvent, LibFlag, LogLevel, PDInfo, \
    StatusReportType

from edge.runtime.component import Component

from .cards import card_event
from .osdp_frame import FrameParser
from .reject_log import RejectLog
from .serial_link import Backoff, open_port
from .wiegand import WiegandError, bits_from_bytes, decode_bits

log = logging.getLogger("drivers.access.osdp")

KEY_STAR, KEY_HASH = 0x7F, 0x0D  # how OSDP osdp_KEYPAD encodes '*' and '#'
LIVENESS_S = 0.05


class FilterChannel(Channel):
    """The libosdp channel: a non-blocking pyserial port behind FrameParser (see the module docstring).
    Runs in the libosdp thread; must never raise into C."""

    def __init__(self, port: serial.Serial, parser: FrameParser):
        super().__init__()
        self.port = port
        self.parser = parser
        self.dead: str | None = None
        self.last_reply = time.monotonic()
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.parser_errors = 0
        self._out = bytearray()  # checked frames not yet taken by libosdp

    def read(self, max_bytes: int) -> bytes:
        if self.dead:
            return b""
        try:
            data = self.port.read(max(max_bytes, 256))
        except Exception as exc:  # SerialException, OSError, termios.error ...: nothing may raise into C
            self.dead = f"read failed: {exc}"
            return b""
        try:
            if data:
                self.rx_bytes += len(data)
                for frame in self.parser.feed(data):
                    self._out += frame.raw
                    self.last_reply = time.monotonic()
            else:
                self.parser.idle()
        except Exception:  # never let a parser bug stop the protocol thread
            self.parser_errors += 1
        if not self._out:
            return b""
        n = max(0, int(max_bytes))
        chunk = bytes(self._out[:n])
        del self._out[:n]
        return chunk

    def write(self, buf: bytes) -> int:
        if self.dead:
            return len(buf)  # pretend: the session is being torn down anyway
        try:
            n = self.port.write(buf) or 0
        except Exception as exc:  # SerialException, OSError, termios.error ...: nothing may raise into C
            self.dead = f"write failed: {exc}"
            return len(buf)
        self.tx_bytes += n
        if buf and n == 0:
            # A hung-up tty (adapter unplugged) can accept nothing without raising.
            self.dead = "write failed: port accepts no data"
        # Always report the whole buffer as sent: libosdp's send-failure path is not something we want it
        # to take (it drops the PD for 300 s); a lost frame is handled like a lost reply instead.
        return len(buf)

    def flush(self) -> None:
        if self.dead:
            return
        try:
            self.port.flush()
        except Exception as exc:  # SerialException, OSError, termios.error ...: nothing may raise into C
            self.dead = f"flush failed: {exc}"


def keys_text(data: bytes) -> str:
    out = []
    for b in data:
        if b == KEY_STAR or b == ord("*"):
            out.append("*")
        elif b == KEY_HASH or b == ord("#"):
            out.append("#")
        elif 0x30 <= b <= 0x39:
            out.append(chr(b))
        else:
            out.append("?")
    return "".join(out)


class OsdpReaderDriver(Component):
    critical = False

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"access.{cfg.id}"
        self.state = "unknown"
        self.tamper: bool | None = None
        self.last_error: str | None = None
        self.offline_since: float | None = None
        self.counters: dict[str, int] = {
            "sessions": 0, "open_failures": 0, "port_errors": 0, "cards": 0, "card_parity_errors": 0,
            "card_bad_length": 0, "card_bad_bits": 0, "keypad_entries": 0, "tamper_reports": 0,
            "events_dropped": 0}
        self._frame_stats: dict[str, int] = {}
        self._channel: FilterChannel | None = None
        self._keys: dict[int, tuple[str, float]] = {}
        self._inbox: asyncio.Queue | None = None
        self._rejects = RejectLog(log, cfg.id)

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        self._inbox = asyncio.Queue(maxsize=1000)
        loop = asyncio.get_running_loop()
        backoff = Backoff(0.5, self.cfg.reconnect_max_s)
        scbk = self._scbk()
        while True:
            try:
                port = open_port(self.cfg.serial)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.counters["open_failures"] += 1
                await self._offline(ctx, f"cannot open {self.cfg.serial.port}: {exc}")
                await ctx.clock.sleep(backoff.next())
                continue
            reason = await self._session(ctx, loop, port, scbk, backoff)
            await self._offline(ctx, reason)
            await ctx.clock.sleep(backoff.next())

    def _scbk(self) -> bytes | None:
        if self.cfg.scbk is None:
            return None
        text = self.cfg.scbk.resolve().strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 16:
            raise ValueError(f"{self.cfg.id}: scbk must be 16 bytes written as 32 hex digits")
        return key

    async def _session(self, ctx, loop, port: serial.Serial, scbk: bytes | None, backoff: Backoff) -> str:
        """One CP session on an open port; returns why it ended."""
        self.counters["sessions"] += 1
        parser = FrameParser(expect_address=self.cfg.address, expect_reply=True)
        channel = FilterChannel(port, parser)
        self._channel = channel
        # No LibFlag.EnableNotification: liveness is judged from the replies we see (libosdp's own verdict
        # comes ~8 s late). Note for anyone touching the channel: an exception escaping a channel method
        # leaves libosdp 3.2.9's binding with a pending Python error, after which its thread breaks or
        # deadlocks in the next callback — hence the catch-all in FilterChannel.
        flags = [LibFlag.EnforceSecure] if scbk else []
        info = PDInfo(self.cfg.address, channel, scbk=scbk, name=self.cfg.id, flags=flags)

        def on_event(_pd: int, event: dict) -> int:  # libosdp thread
            try:
                loop.call_soon_threadsafe(self._inbox_put, event)
            except Exception:  # loop closed during shutdown; nothing may raise into C
                pass
            return 0

        cp = ControlPanel([info], log_level=LogLevel.Error, event_handler=on_event)
        cp.start()
        started = time.monotonic()
        try:
            while True:
                await asyncio.sleep(LIVENESS_S)
                while not self._inbox.empty():
                    await self._handle(ctx, self._inbox.get_nowait())
                await self._flush_keys(ctx, force=False)
                self._rejects.check(self._merge(parser.stats), "OSDP line errors")
                if channel.dead:
                    self.counters["port_errors"] += 1
                    return f"serial port lost ({channel.dead})"
                silent_s = time.monotonic() - max(channel.last_reply, started)
                if silent_s > self.cfg.offline_after_s:
                    return f"no reply for {silent_s:.1f} s"
                if self.state != "online" and cp.is_online(self.cfg.address) \
                        and silent_s < min(1.0, self.cfg.offline_after_s):
                    backoff.reset()
                    await self._online(ctx)
        finally:
            await self._flush_keys(ctx, force=True)
            self._frame_stats = self._merge(parser.stats)
            self._channel = None
            try:
                cp.teardown()  # joins the libosdp thread (one 20 ms refresh at most)
            except RuntimeError:
                pass
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _inbox_put(self, event: dict) -> None:
        try:
            self._inbox.put_nowait(event)
        except asyncio.QueueFull:
            self.counters["events_dropped"] += 1

    # ---- events from the reader -----------------------------------------------------------------------
    async def _handle(self, ctx, ev: dict) -> None:
        kind = ev.get("event")
        if kind == OsdpEvent.CardRead:
            self._card(ctx, ev)
        elif kind == OsdpEvent.KeyPress:
            await self._keypress(ctx, ev)
        elif kind == OsdpEvent.Status:
            self._status(ctx, ev)

    def _card(self, ctx, ev: dict) -> None:
        fmt = ev.get("format")
        data = bytes(ev.get("data") or b"")
        if fmt == CardFormat.ASCII:
            kind, payload = card_event(self.cfg, text=data.decode("ascii", "replace").strip(),
                                       reader=ev.get("reader_no"))
        else:
            try:
                card = decode_bits(bits_from_bytes(data, int(ev.get("length") or 0)))
            except WiegandError as exc:
                key = {"parity": "card_parity_errors", "bad_length": "card_bad_length"}.get(exc.reason,
                                                                                             "card_bad_bits")
                self.counters[key] += 1
                self.last_error = f"card read rejected: {exc}"
                log.warning("card read rejected", extra={"device": self.cfg.id, "why": str(exc)})
                return
            kind, payload = card_event(self.cfg, card=card, reader=ev.get("reader_no"))
        self.counters["cards"] += 1
        ctx.emit(ctx.make_event(kind, self.cfg.id, payload))

    async def _keypress(self, ctx, ev: dict) -> None:
        reader = int(ev.get("reader_no") or 0)
        keys, _ = self._keys.get(reader, ("", 0.0))
        keys += keys_text(bytes(ev.get("data") or b""))
        self._keys[reader] = (keys, time.monotonic())
        if "#" in keys or len(keys) >= 16:
            await self._flush_keys(ctx, force=True, only=reader)

    async def _flush_keys(self, ctx, force: bool, only: int | None = None) -> None:
        now = time.monotonic()
        for reader, (keys, last) in list(self._keys.items()):
            if only is not None and reader != only:
                continue
            if keys and (force or now - last >= self.cfg.keypad_timeout_s):
                del self._keys[reader]
                shown = keys if self.cfg.keypad == "clear" else "".join("*" if c.isdigit() else c for c in keys)
                self.counters["keypad_entries"] += 1
                ctx.emit(ctx.make_event("reader.keypad", self.cfg.id,
                                        {"device": self.cfg.id, "reader": str(reader), "keys": shown}))

    def _status(self, ctx, ev: dict) -> None:
        if ev.get("type") != StatusReportType.Local:
            return
        report = bytes(ev.get("report") or b"")
        if not report:
            return
        self.counters["tamper_reports"] += 1
        active = bool(report[0])
        if active != self.tamper and (self.tamper is not None or active):
            ctx.emit(ctx.make_event("reader.tamper", self.cfg.id, {"device": self.cfg.id, "active": active}))
        self.tamper = active

    # ---- state --------------------------------------------------------------------------------------
    async def _online(self, ctx) -> None:
        first = self.state == "unknown"
        payload: dict[str, Any] = {"device": self.cfg.id, "device_type": "osdp",
                                   "reason": "gateway started" if first else "answers again"}
        if self.offline_since is not None:
            payload["offline_s"] = round(time.monotonic() - self.offline_since, 1)
        self.state, self.offline_since = "online", None
        ctx.emit(ctx.make_event("device.online", self.cfg.id, payload))
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "osdp", "online",
                             {"port": str(self.cfg.serial.port), "address": self.cfg.address}, True)
        log.info("reader online", extra={"device": self.cfg.id})

    async def _offline(self, ctx, reason: str) -> None:
        self.last_error = reason
        if self.state == "offline":
            return
        self.state, self.offline_since = "offline", time.monotonic()
        ctx.emit(ctx.make_event("device.offline", self.cfg.id,
                                {"device": self.cfg.id, "device_type": "osdp", "reason": reason}))
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "osdp", "offline",
                             {"port": str(self.cfg.serial.port), "address": self.cfg.address, "reason": reason})
        log.warning("reader offline", extra={"device": self.cfg.id, "reason": reason})

    def _merge(self, live: dict[str, int]) -> dict[str, int]:
        out = dict(self._frame_stats)
        for k, v in live.items():
            out[k] = out.get(k, 0) + v
        return out

    def health(self) -> dict[str, Any]:
        # device_state / device_error: the supervisor's own state / last_error keys sit beside these
        ch = self._channel
        frames = self._merge(ch.parser.stats) if ch is not None else dict(self._frame_stats)
        return {"device_state": self.state, "port": str(self.cfg.serial.port), "address": self.cfg.address,
                "tamper": self.tamper, "device_error": self.last_error, "counters": dict(self.counters),
                "frames": frames, "parser_errors": ch.parser_errors if ch else 0}

