"""UHPPOTE / 微耕-style network door controller (UDP 60000): pushed events, index backfill, time sync,
offline/online.

No record may be missed across gateway downtime, lost UDP pushes or a controller that was unreachable:
the controller numbers its records (event index) and keeps them in a ring buffer, so the gateway keeps
the last index it has made durable (ctx.store kv, per controller serial) and, on start, after every
reconnection and whenever a push or a status poll shows a gap, fetches the missing indexes with
get-event (0xB0). Event ids are derived from (serial, index, record time), so a record fetched twice
(a crash between commit and index update) is one event. The index is written after the events are
committed, never before. It is also written to the controller's "downloaded index" register
(set-event-index 0xB2 / get-event-index 0xB4), which lets a gateway with a fresh database resume where
the previous one stopped instead of re-importing the whole history.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
from typing import Any
from zoneinfo import ZoneInfo

from uhppoted.uhppote_async import UhppoteAsync

from edge.events import Event
from edge.runtime.component import Component

from . import uhppote_codec as codec
from .door_tracker import DoorTracker
from .record_ids import stable_uuid7
from .reject_log import RejectLog
from .uhppote_listener import UhppoteListener

log = logging.getLogger("drivers.access.uhppote")

_POLL = object()
COMMIT_EVERY = 50  # records per durable commit during a backfill

REJECTS = ("bad_size", "bad_header", "bad_function", "bad_packet", "wrong_controller", "wrong_source",
           "bad_replies", "push_overflow", "unmapped_records")
COUNTERS = ("packets", "events", "duplicates", "gaps", "backfilled", "overwritten", "missing_records",
            "index_resets", "skipped_records", "info_records", "unmapped_records", "bad_size", "bad_header",
            "bad_function", "bad_packet", "wrong_controller", "wrong_source", "push_overflow", "timeouts",
            "bad_replies", "network_errors", "time_syncs", "held_open_detected")


class ControllerUnreachable(Exception):
    pass


def index_key(serial: int) -> str:
    return f"access.uhppote.{serial}.last_index"


class UhppoteDriver(Component):
    critical = False

    def __init__(self, cfg, listener: UhppoteListener, timezone: str = "Asia/Shanghai"):
        self.cfg = cfg
        self.name = f"access.{cfg.id}"
        self.serial = int(cfg.serial)
        self.listener = listener
        self.tz = ZoneInfo(timezone)
        self.state = "unknown"
        self.last_index: int | None = None
        self.newest_index: int | None = None
        self.missed = 0
        self.offline_since: float | None = None
        self.time_drift_s: float | None = None
        self.last_time_sync: float | None = None
        self.last_error: str | None = None
        self.counters: dict[str, int] = {k: 0 for k in COUNTERS}
        self.doors = DoorTracker(cfg.held_open_s)
        self._api = UhppoteAsync(bind="0.0.0.0", broadcast="255.255.255.255:60000", listen="0.0.0.0:60001")
        self._target = (self.serial, f"{cfg.address}:{cfg.port}", "udp")
        self._queue: asyncio.Queue | None = None
        self._poll_queued = False
        self._device_index_written: int | None = None
        self._rejects = RejectLog(log, cfg.id)

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        self._queue = asyncio.Queue(maxsize=2000)
        self._poll_queued = False
        stored = await ctx.store.call(ctx.store.kv_get, index_key(self.serial))
        self.last_index = int(stored) if stored is not None else None
        await self.listener.register(self.serial, self.cfg.address, self._on_packet, self._on_reject)
        ticker = asyncio.create_task(self._tick(ctx), name=f"{self.name}-tick")
        try:
            await self._poll(ctx)
            while True:
                item = await self._queue.get()
                if item is _POLL:
                    self._poll_queued = False
                    await self._poll(ctx)
                    continue
                batch = [item]
                while not self._queue.empty() and len(batch) < 200:
                    nxt = self._queue.get_nowait()
                    if nxt is _POLL:
                        self._poll_queued = False
                        continue  # the pushes being handled make this poll redundant
                    batch.append(nxt)
                await self._handle_pushes(ctx, batch)
        finally:
            ticker.cancel()
            self.listener.unregister(self.serial)

    async def _tick(self, ctx) -> None:
        while True:
            await ctx.clock.sleep(self.cfg.poll_interval_s)
            if not self._poll_queued and self._queue is not None:
                try:
                    self._queue.put_nowait(_POLL)
                    self._poll_queued = True
                except asyncio.QueueFull:
                    pass

    # ---- pushed packets (called from the listener, in the loop) --------------------------------------
    def _on_reject(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _on_packet(self, data: bytes, addr) -> None:
        self.counters["packets"] += 1
        if addr[0] != self.cfg.address and not self.cfg.accept_any_source:
            self.counters["wrong_source"] += 1
            return
        try:
            pushed = codec.parse_pushed(data)
        except codec.PacketError as exc:
            self.counters[exc.reason] = self.counters.get(exc.reason, 0) + 1
            return
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(pushed)
        except asyncio.QueueFull:
            # Nothing is lost: the next poll sees the newer index and backfills it.
            self.counters["push_overflow"] += 1

    async def _handle_pushes(self, ctx, batch: list[codec.Pushed]) -> None:
        now = ctx.clock.time()
        for p in batch:
            self._door_states(ctx, p.doors_open, now)
        if self.state != "online":
            # The controller talks to us again: a poll brings it online and backfills what was missed.
            await self._poll(ctx)
        records = sorted((p.record for p in batch if p.record is not None), key=lambda r: r.index)
        events: list[Event] = []
        top = self.last_index
        for r in records:
            if top is not None and r.index <= top:
                self.counters["duplicates"] += 1
                continue
            if top is not None and r.index > top + 1:
                self.counters["gaps"] += 1
                await self._commit(ctx, events, top)
                events = []
                await self._backfill(ctx, r.index - 1)
                top = self.last_index
                if top is not None and r.index <= top:
                    continue
            events.extend(self._events_for(ctx, r))
            if top is None or r.index == top + 1:
                top = r.index
            self.newest_index = max(self.newest_index or 0, r.index)
        await self._commit(ctx, events, top)

    # ---- polling, reconnection, backfill -------------------------------------------------------------
    async def _poll(self, ctx) -> None:
        try:
            status = await self._request("get_status")
        except ControllerUnreachable:
            self.missed += 1
            if self.missed >= self.cfg.offline_after_missed and self.state != "offline":
                await self._set_offline(ctx, f"no answer to {self.missed} status polls")
            return
        self.missed = 0
        self._rejects.check({k: self.counters[k] for k in REJECTS}, "controller packets")
        came_back = self.state != "online"
        if came_back:
            await self._set_online(ctx)
            await self._configure(ctx)
        elif self.cfg.sync_time and (self.last_time_sync is None or
                                     ctx.clock.monotonic() - self.last_time_sync >= self.cfg.time_sync_every_s):
            await self._sync_time(ctx)
        self._door_states(ctx, (status.door_1_open, status.door_2_open, status.door_3_open, status.door_4_open),
                          ctx.clock.time())
        self.newest_index = status.event_index
        if self.last_index is None or status.event_index != self.last_index:
            await self._backfill(ctx, status.event_index)
        await self._write_device_index()
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "uhppote", "online", self._state_info(), True)

    async def _configure(self, ctx) -> None:
        """After (re)connection: where to push events, which events to record, what time it is."""
        if self.cfg.listener_address:
            host, _, port = self.cfg.listener_address.partition(":")
            try:
                resp = await self._request("set_listener", ipaddress.IPv4Address(host),
                                           int(port or self.cfg.listen_port))
                if not resp.ok:
                    self.last_error = "controller refused set-listener"
            except (ControllerUnreachable, ValueError) as exc:
                self.last_error = f"set-listener: {exc}"
        if self.cfg.record_special_events:
            try:
                await self._request("record_special_events", True)
            except ControllerUnreachable as exc:
                self.last_error = f"record-special-events: {exc}"
        if self.cfg.sync_time:
            await self._sync_time(ctx)

    async def _sync_time(self, ctx) -> None:
        try:
            resp = await self._request("get_time")
            now_local = self._local_now(ctx)
            drift = (resp.datetime - now_local).total_seconds() if resp.datetime else None
            self.time_drift_s = drift
            if drift is None or abs(drift) > self.cfg.time_sync_tolerance_s:
                await self._request("set_time", self._local_now(ctx))
                self.counters["time_syncs"] += 1
                log.info("controller clock set", extra={"device": self.cfg.id, "drift_s": drift})
            self.last_time_sync = ctx.clock.monotonic()
        except ControllerUnreachable as exc:
            self.last_error = f"time sync: {exc}"

    def _local_now(self, ctx) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(ctx.clock.time()), self.tz).replace(tzinfo=None)

    async def _backfill(self, ctx, newest: int) -> None:
        """Fetch records last_index+1 .. newest. Stops (to resume on the next poll) if the controller
        stops answering; last_index only ever covers records that are committed."""
        last = self.last_index
        if last is None:
            last = await self._first_start_index(newest)
        if newest < last:
            # The controller's log restarted (cleared, replaced, factory reset): read its whole log again.
            self.counters["index_resets"] += 1
            log.warning("controller event index went backwards; reading its log from the start",
                        extra={"device": self.cfg.id, "stored": last, "controller": newest})
            last = 0
        if newest - last > self.cfg.backfill_max:
            skipped = newest - last - self.cfg.backfill_max
            self.counters["skipped_records"] += skipped
            log.warning("gap larger than backfill_max; oldest records not fetched",
                        extra={"device": self.cfg.id, "skipped": skipped})
            last = newest - self.cfg.backfill_max
        if last != self.last_index:
            await self._commit(ctx, [], last)
        events: list[Event] = []
        idx = last + 1
        while idx <= newest:
            try:
                resp = await self._request("get_event", idx)
            except ControllerUnreachable:
                log.warning("backfill interrupted; will resume", extra={"device": self.cfg.id, "at_index": idx})
                break
            if resp.event_type == codec.TYPE_OVERWRITTEN:
                self.counters["overwritten"] += 1
            elif resp.event_type == codec.TYPE_NONE or resp.index != idx:
                self.counters["missing_records"] += 1
            else:
                events.extend(self._events_for(ctx, codec.record_from_get_event(resp)))
                self.counters["backfilled"] += 1
            idx += 1
            if len(events) >= COMMIT_EVERY:
                await self._commit(ctx, events, idx - 1)
                events = []
        await self._commit(ctx, events, idx - 1)

    async def _first_start_index(self, newest: int) -> int:
        """No stored index (new controller or new database): ask the controller where we stopped."""
        try:
            resp = await self._request("get_event_index")
            remembered = resp.event_index
        except ControllerUnreachable:
            remembered = 0
        if 0 < remembered <= newest:
            log.info("resuming from the controller's downloaded-index register",
                     extra={"device": self.cfg.id, "index": remembered})
            return remembered
        return max(0, newest - self.cfg.backfill_on_first_start)

    async def _commit(self, ctx, events: list[Event], index: int | None) -> None:
        """Emit events, wait until the last one is on disk, then move the stored index."""
        if events:
            for e in events[:-1]:
                ctx.emit(e)
            await ctx.bus.emit_durable(events[-1])
            self.counters["events"] += len(events)
        if index is not None and index != self.last_index:
            self.last_index = index
            await ctx.store.call(ctx.store.kv_set, index_key(self.serial), index)

    async def _write_device_index(self) -> None:
        if self.last_index is None or self.last_index == self._device_index_written:
            return
        try:
            await self._request("set_event_index", self.last_index)
            self._device_index_written = self.last_index
        except ControllerUnreachable:
            pass

    # ---- records -> events ---------------------------------------------------------------------------
    def _events_for(self, ctx, r: codec.Record) -> list[Event]:
        mapped = codec.map_record(r, self.cfg.doors)
        if mapped is None:
            self.counters["info_records" if r.reason in codec.INFO_REASONS else "unmapped_records"] += 1
            return []
        ts_ms = codec.local_to_utc_ms(r.timestamp, self.tz) if r.timestamp else ctx.clock.time_ms()
        e = ctx.make_event(mapped.kind, self.cfg.id, mapped.payload, severity=mapped.severity, ts_ms=ts_ms)
        e = dataclasses.replace(e, id=stable_uuid7(ts_ms, f"uhppote:{r.controller}:{r.index}:{r.device_time}"))
        if mapped.kind == "door.held_open" and r.door:
            self.doors.reported_by_controller(r.door, ctx.clock.time())
        return [e]

    def _door_states(self, ctx, doors_open, now: float) -> None:
        for i, is_open in enumerate(doors_open, start=1):
            if i in self.cfg.doors or is_open or i in self.doors.open_doors():
                self.doors.update(i, bool(is_open), now)
        for door, duration in self.doors.due(now):
            self.counters["held_open_detected"] += 1
            payload = {"controller": str(self.serial), "door": door, "door_name": self.cfg.doors.get(door),
                       "duration_s": round(duration, 1),
                       "reason": f"open longer than {self.cfg.held_open_s:g} s (door contact)"}
            ctx.emit(ctx.make_event("door.held_open", self.cfg.id, {k: v for k, v in payload.items()
                                                                     if v is not None}))

    # ---- state ---------------------------------------------------------------------------------------
    async def _set_offline(self, ctx, reason: str) -> None:
        self.state = "offline"
        self.offline_since = ctx.clock.monotonic()
        self.last_error = reason
        ctx.emit(ctx.make_event("device.offline", self.cfg.id, {
            "device": self.cfg.id, "device_type": "uhppote", "reason": reason, "missed_polls": self.missed}))
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "uhppote", "offline", self._state_info())
        log.warning("controller offline", extra={"device": self.cfg.id, "reason": reason})

    async def _set_online(self, ctx) -> None:
        offline_s = round(ctx.clock.monotonic() - self.offline_since, 1) if self.offline_since is not None else None
        first = self.state == "unknown"
        self.state = "online"
        self.offline_since = None
        payload: dict[str, Any] = {"device": self.cfg.id, "device_type": "uhppote",
                                   "reason": "gateway started" if first else "answers again"}
        if offline_s is not None:
            payload["offline_s"] = offline_s
        ctx.emit(ctx.make_event("device.online", self.cfg.id, payload))
        await ctx.store.call(ctx.store.set_device_state, self.cfg.id, "uhppote", "online", self._state_info(), True)
        log.info("controller online", extra={"device": self.cfg.id, "offline_s": offline_s})

    def _state_info(self) -> dict[str, Any]:
        return {"serial": self.serial, "address": self.cfg.address, "last_index": self.last_index,
                "newest_index": self.newest_index, "time_drift_s": self.time_drift_s}

    async def _request(self, method: str, *args):
        """One request with retries; returns the decoded reply or raises ControllerUnreachable."""
        err = "no reply"
        for _ in range(self.cfg.retries + 1):
            try:
                resp = await getattr(self._api, method)(self._target, *args, timeout=self.cfg.timeout_s)
            except TimeoutError:
                self.counters["timeouts"] += 1
                err = f"{method}: timeout after {self.cfg.timeout_s:g} s"
                continue
            except (ValueError, IndexError, TypeError) as exc:  # a reply uhppoted cannot decode
                self.counters["bad_replies"] += 1
                err = f"{method}: bad reply ({exc})"
                continue
            except OSError as exc:
                self.counters["network_errors"] += 1
                err = f"{method}: {exc.strerror or exc}"
                await asyncio.sleep(min(0.2, self.cfg.timeout_s))
                continue
            if resp is None or getattr(resp, "controller", None) != self.serial:
                self.counters["wrong_controller"] += 1
                err = f"{method}: reply from another controller"
                continue
            return resp
        self.last_error = err
        raise ControllerUnreachable(err)

    def health(self) -> dict[str, Any]:
        # device_state / device_error: the supervisor's own state / last_error keys sit beside these
        return {"device_state": self.state, "serial": self.serial, "address": f"{self.cfg.address}:{self.cfg.port}",
                "last_index": self.last_index, "newest_index": self.newest_index, "missed_polls": self.missed,
                "time_drift_s": self.time_drift_s, "doors_open": self.doors.open_doors(),
                "device_error": self.last_error, "counters": dict(self.counters),
                "listener": {"bound": self.listener.bound, **self.listener.stats}}
