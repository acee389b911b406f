"""The MQTT 5 uplink: store-and-forward from the SQLite outbox to the county broker.

Flow per connection (a fresh paho client each time; nothing in flight lives only in memory):
  CONNACK -> retained birth on .../status -> subscribe .../cmd/+ -> feed outbox rows in seq order through a
  bounded window (<= max_inflight, <= the broker's Receive Maximum, <= 1000) and a token bucket (drain rate cap).
  PUBACK reason < 0x80 -> row marked sent (kept for resend); reason >= 0x80 -> counted, row stays pending,
  feeding rewinds to it (go-back-N keeps per-source order), quota errors halve the window.
  Link lost -> everything unacknowledged is simply still pending in SQLite and goes out on the next connection.

Times: network-facing timing (keepalive, rate cap, timeouts) is real monotonic time because paho and the
broker use real time; application timing (reconnect backoff, telemetry period, ages, eviction) uses ctx.clock
so tests can run a ten-minute outage in seconds.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

from paho.mqtt.enums import MQTTErrorCode

from edge import __version__
from edge.events import format_ts
from edge.runtime.component import Component

from . import outbox
from .aio import ConnAck, ConnectFailed, FastProperties, MqttConnection, Will, _varint, publish_properties
from .models import Status
from .tls import TlsProblem, build_context, client_cert_facts
from .topics import Topics

log = logging.getLogger("cloud_bridge.uplink")

AUX_SLOTS = 8  # in-flight slots kept for status/telemetry/replies/media next to the event window
FETCH_BATCH = 1000
QUOTA_EXCEEDED = 0x97


@dataclass(slots=True)
class _Pending:
    kind: str  # row | resend | aux
    seq: int = 0
    row: outbox.Row | None = None
    media: list[str] = field(default_factory=list)
    done: asyncio.Future | None = None
    t_pub: float = 0.0


@dataclass
class _Aux:
    topic: str
    payload: bytes
    retain: bool = False
    props: Any = None
    done: asyncio.Future | None = None
    label: str = "aux"


class TokenBucket:
    """Rate cap with a one-second burst; rate 0 = unlimited."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.t = time.monotonic()

    def take(self, n: int) -> int:
        if self.rate <= 0:
            return n
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now
        k = min(n, int(self.tokens))
        self.tokens -= k
        return k

    def wait_s(self) -> float:
        if self.rate <= 0:
            return 0.0
        return max(0.001, (1 - self.tokens) / self.rate)


class _RateLimitedLog:
    def __init__(self, every_s: float = 60.0):
        self.every_s = every_s
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = collections.Counter()

    def __call__(self, key: str, level: int, msg: str, **extra) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.every_s:
            n = self.suppressed.pop(key, 0)
            if n:
                extra["suppressed_since_last"] = n
            self.last[key] = now
            log.log(level, msg, extra=extra)
        else:
            self.suppressed[key] += 1


class Uplink(Component):
    name = "uplink"
    critical = False

    def __init__(self, config, ctx=None):
        self.config = config
        self.cfg = config.uplink
        g = config.gateway
        self.topics = Topics(self.cfg.topic_prefix, g.county_code, g.compound_id, g.id)
        u = urlparse(self.cfg.broker)
        self.host = u.hostname or "localhost"
        self.use_tls = u.scheme == "mqtts" or self.cfg.tls is not None
        self.port = u.port or (8883 if self.use_tls else 1883)
        self.budget_bytes = int(config.storage.outbox_budget_mb * 1024 * 1024)
        self._gw_json = json.dumps(g.id)
        self._props_prefix: bytes | None = None
        self.ctx = ctx
        self.conn: MqttConnection | None = None
        self._registered = False
        self._kick = asyncio.Event()
        self._flush_evt = asyncio.Event()
        self._evict_evt = asyncio.Event()
        self._inflight: dict[int, _Pending] = {}
        self._rows_inflight = 0
        self._inflight_seqs: set[int] = set()
        self._buffer: collections.deque[outbox.Row] = collections.deque()
        self._cursor = 0
        self._gen = 0
        self._exhausted = False
        self._prefetch: asyncio.Task | None = None
        self._rewind_to: int | None = None
        self._retry_at = 0.0
        self._consecutive_failures = 0
        self._acked: list[int] = []
        self._acked_set: set[int] = set()
        self._acked_media: list[tuple[int, str, str]] = []
        self._failed: list[tuple[int, int]] = []
        self._resend: collections.deque[list[int]] = collections.deque()
        self._resend_total = 0
        self._aux: collections.deque[_Aux] = collections.deque()
        self._bucket = TokenBucket(self.cfg.drain_rate_per_s)
        self._rlog = _RateLimitedLog()
        self.window = self.cfg.max_inflight
        self.row_cap = self.cfg.max_inflight
        self.total_cap = self.cfg.max_inflight + AUX_SLOTS
        self.started_ms: int | None = None
        self.connected = False
        self.connack: ConnAck | None = None
        self.ack_listeners: list[Callable[[list[int]], None]] = []  # benchmarks/tests: seqs as PUBACKed
        self.last_stats: outbox.Stats | None = None
        self.commands = None
        self.media = None
        self.c = collections.Counter()  # counters for health()/telemetry
        self.rejected: collections.Counter = collections.Counter()
        self.evicted_by_kind: collections.Counter = collections.Counter()
        self.evicted_by_priority: collections.Counter = collections.Counter()
        self._unalerted: collections.Counter = collections.Counter()
        self._last_alert = -1e18
        self._last_used = 0
        self.last_disconnect: str | None = None
        self.last_connect_error: str | None = None
        self.max_paho_queue = 0
        self.max_buffer = 0

    # ---- component ----------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        from .commands import CommandHandler
        from .media import MediaUploader

        self.ctx = ctx
        if self.started_ms is None:
            self.started_ms = ctx.clock.time_ms()
        await ctx.store.call(outbox.ensure_schema, ctx.store)
        if not self._registered:
            ctx.bus.on_commit(self._on_commit)
            self._registered = True
        self.commands = self.commands or CommandHandler(self)
        self.media = self.media or MediaUploader(self)
        self._preflight()
        tasks = [asyncio.create_task(self._flush_loop(), name="uplink-flush"),
                 asyncio.create_task(self._telemetry_loop(), name="uplink-telemetry"),
                 asyncio.create_task(self._maintenance_loop(), name="uplink-maintenance"),
                 asyncio.create_task(self.media.run(), name="uplink-media")]
        try:
            await self._connection_loop()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown()

    def _on_commit(self, seqs: list[int]) -> None:
        if seqs:
            self._exhausted = False
            self._kick.set()
            self._evict_evt.set()

    def _preflight(self) -> None:
        facts = client_cert_facts(self.cfg.tls) if self.use_tls else None
        if not facts:
            return
        if facts.get("error"):
            log.error("client certificate cannot be read", extra={"error": facts["error"]})
        elif facts["expired"]:
            log.error("client certificate has expired; the broker will refuse the TLS handshake",
                      extra={"not_after": facts["not_after"], "cn": facts["cn"]})
        elif facts["not_yet_valid"]:
            log.error("client certificate is not valid yet (check the clock)", extra={"not_before": facts["not_before"]})
        if facts.get("cn") and facts["cn"] != self.config.gateway.id:
            log.warning("client certificate CN differs from the gateway id; a broker that maps the certificate "
                        "identity to the topic ACL will refuse this gateway's topics",
                        extra={"cn": facts["cn"], "gateway_id": self.config.gateway.id})

    # ---- connection management ---------------------------------------------------------------------------
    def _status(self, state: str, stats: outbox.Stats | None) -> bytes:
        g = self.config.gateway
        last = stats.last_seq if stats else 0
        return Status(state=state, gateway_id=g.id, compound_id=g.compound_id, county_code=g.county_code,
                      ts=format_ts(self.ctx.clock.time_ms()), version=__version__,
                      config_hash=self.config.config_hash(), started_at=format_ts(self.started_ms),
                      last_seq=last, pending_from_seq=stats.pending_from_seq if stats else last + 1
                      ).model_dump_json().encode()

    def _new_connection(self, stats: outbox.Stats) -> MqttConnection:
        tls = build_context(self.cfg.tls) if self.use_tls else None
        pw = self.cfg.password.resolve() if self.cfg.password else None
        return MqttConnection(
            client_id=self.config.gateway.id, host=self.host, port=self.port, keepalive=self.cfg.keepalive_s,
            tls=tls, username=self.cfg.username, password=pw,
            will=Will(self.topics.status, self._status("offline", stats)),
            clean_start=True, max_inflight=self.cfg.max_inflight + AUX_SLOTS,
            connect_timeout_s=self.cfg.connect_timeout_s,
            on_message=lambda m: self.commands.on_message(m), on_publish=self._on_publish)

    async def _connection_loop(self) -> None:
        attempt = 0
        while True:
            stats = await self._stats()
            try:
                conn = self._new_connection(stats)
                self.c["connect_attempts"] += 1
                ack = await conn.connect()
            except (ConnectFailed, TlsProblem, OSError, ValueError) as exc:
                msg = str(exc) or type(exc).__name__
                self.last_connect_error = msg
                attempt += 1
                self.c["connect_failures"] += 1
                self._rlog("connect:" + msg[:60], logging.WARNING, f"uplink cannot connect: {msg}; will retry",
                           broker=self.cfg.broker, error=msg, attempt=attempt)
                await self._backoff(attempt)
                continue
            t0 = self.ctx.clock.monotonic()
            self.last_connect_error = None
            await self._session(conn, ack)
            if self.ctx.clock.monotonic() - t0 >= max(30.0, self.cfg.keepalive_s):
                attempt = 0  # it was up for a while: start the backoff from the bottom again
            attempt += 1
            await self._backoff(attempt)

    async def _backoff(self, attempt: int) -> None:
        d = min(self.cfg.reconnect_max_s, self.cfg.reconnect_min_s * 2 ** max(0, attempt - 1))
        # "equal jitter": thousands of gateways coming back after a regional outage spread out
        await self.ctx.clock.sleep(d / 2 + random.uniform(0, d / 2))

    async def _session(self, conn: MqttConnection, ack: ConnAck) -> None:
        self.conn, self.connack, self.connected = conn, ack, True
        self.c["connects"] += 1
        cap = self.cfg.max_inflight + AUX_SLOTS
        if self.cfg.honour_receive_maximum:
            cap = min(cap, ack.receive_maximum)
        self.total_cap = max(2, cap)
        self.row_cap = max(1, min(self.cfg.max_inflight, self.total_cap - min(AUX_SLOTS, max(1, self.total_cap // 10))))
        self.window = self.row_cap
        self._reset_feed()
        log.info("uplink connected", extra={"broker": self.cfg.broker, "receive_maximum": ack.receive_maximum,
                                            "window": self.window, "tls": self.use_tls})
        stats = await self._stats()
        self.publish_aux(self.topics.status, self._status("online", stats), retain=True, label="status")
        feeder = asyncio.create_task(self._feed(conn), name="uplink-feed")
        try:
            try:
                codes = await conn.subscribe([(self.topics.cmd_filter, 1)])
                if codes and codes[0] >= 0x80:
                    log.error("broker refused the command subscription", extra={"reason": hex(codes[0])})
            except (ConnectFailed, asyncio.TimeoutError) as exc:
                log.warning("command subscription failed", extra={"error": str(exc)})
            done, _ = await asyncio.wait([conn.closed, feeder], return_when=asyncio.FIRST_COMPLETED)
            if feeder in done and feeder.exception() is not None:
                raise feeder.exception()
            reason = conn.closed.result() if conn.closed.done() else "feeder stopped"
        except asyncio.CancelledError:
            # shutting down: keep the connection for _shutdown() (stopped status + clean DISCONNECT, no will)
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            raise
        except BaseException:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            conn.abort("uplink error")
            self.connected = False
            self.conn = None
            self._drop_inflight()  # the component restarts: nothing in flight survives, all is still in SQLite
            raise
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        if not conn.closed.done():
            conn.abort("session ended")
        self.connected = False
        self.conn = None
        self.last_disconnect = reason
        self.c["disconnects"] += 1
        log.warning("uplink disconnected", extra={"reason": reason, "inflight_lost": self._rows_inflight})
        await self._session_lost()

    def _drop_inflight(self) -> tuple[list[int], list[int]]:
        lost_rows = [p.seq for p in self._inflight.values() if p.kind == "row"]
        lost_resend = sorted(p.seq for p in self._inflight.values() if p.kind == "resend")
        for p in self._inflight.values():
            if p.done is not None and not p.done.done():
                p.done.set_exception(ConnectFailed("connection lost before PUBACK"))
                p.done.exception()
        self._inflight.clear()
        self._inflight_seqs.clear()
        self._rows_inflight = 0
        return lost_rows, lost_resend

    async def _session_lost(self) -> None:
        lost_rows, lost_resend = self._drop_inflight()
        for s in reversed(lost_resend):
            self._resend.appendleft([s, s])
        self.c["retried"] += len(lost_rows)
        for a in self._aux:
            if a.done is not None and not a.done.done():
                a.done.set_exception(ConnectFailed("not connected"))
                a.done.exception()
        self._aux.clear()
        if lost_rows:
            try:
                await self.ctx.store.call(outbox.count_attempts, self.ctx.store, lost_rows)
            except Exception:  # counting is best effort; the rows themselves are safe
                log.exception("could not count retry attempts")

    def _reset_feed(self) -> None:
        self._gen += 1
        self._buffer.clear()
        self._cursor = 0
        self._rewind_to = None
        self._exhausted = False

    # ---- feeding -----------------------------------------------------------------------------------------
    def publish_aux(self, topic: str, payload: bytes, *, retain: bool = False, props=None, label: str = "aux",
                    want_ack: bool = False) -> asyncio.Future | None:
        """Queue a non-outbox message (status, telemetry, reply, media). Dropped if not connected."""
        if not self.connected:
            self.c[f"{label}_skipped_offline"] += 1
            return None
        fut = asyncio.get_running_loop().create_future() if want_ack else None
        if props is None:
            props = publish_properties(content_type="application/json")
        if len(self._aux) >= 256:
            old = self._aux.popleft()
            self.c["aux_dropped"] += 1
            if old.done is not None and not old.done.done():
                old.done.set_exception(ConnectFailed("aux queue overflow"))
                old.done.exception()
        self._aux.append(_Aux(topic, payload, retain, props, fut, label))
        self._kick.set()
        return fut

    def _drain_aux(self, conn: MqttConnection) -> None:
        while self._aux and len(self._inflight) < self.total_cap:
            a = self._aux.popleft()
            rc, mid = conn.publish(a.topic, a.payload, 1, a.retain, a.props)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._count_publish_error(rc)
                if a.done is not None and not a.done.done():
                    a.done.set_exception(ConnectFailed(f"publish failed rc={rc}"))
                    a.done.exception()
                return
            self.c[f"{a.label}_published"] += 1
            self._inflight[mid] = _Pending("aux", done=a.done, t_pub=time.monotonic())

    def _count_publish_error(self, rc: int) -> None:
        if rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.c["queue_size_errors"] += 1
            log.error("paho refused a publish with MQTT_ERR_QUEUE_SIZE (window accounting bug)")
        else:
            self.c["publish_errors"] += 1

    def _room(self) -> int:
        return max(0, min(self.window - self._rows_inflight, self.total_cap - len(self._inflight)))

    async def _feed(self, conn: MqttConnection) -> None:
        store = self.ctx.store
        while conn.is_open:
            self._kick.clear()
            self._drain_aux(conn)
            timeout: float | None = 5.0
            if self._rewind_to is not None:
                if self._rows_inflight == 0 and not self._resend_inflight():
                    self._gen += 1
                    self._buffer.clear()
                    self._cursor = self._rewind_to
                    self._rewind_to = None
                    self._exhausted = False
                else:
                    await self._wait(timeout)
                    continue
            now = time.monotonic()
            if now < self._retry_at:
                await self._wait(self._retry_at - now)
                continue
            room = self._room()
            if room > 0:
                k = self._bucket.take(room)
                if k == 0:
                    await self._wait(self._bucket.wait_s())
                    continue
                rows, resend = await self._next_rows(store, k)
                if not conn.is_open:
                    break
                if len(rows) < k:
                    self._bucket.tokens += k - len(rows)  # unused tokens go back
                for row in rows:
                    if not self._publish_row(conn, row, resend):
                        break
                if rows:
                    self.max_paho_queue = max(self.max_paho_queue, conn.inflight())
                    await asyncio.sleep(0)  # let paho write and read between batches
                    continue
            await self._wait(timeout)

    def _resend_inflight(self) -> bool:
        return any(p.kind == "resend" for p in self._inflight.values())

    async def _wait(self, timeout: float | None) -> None:
        if self._kick.is_set():
            return
        try:  # asyncio.timeout: on Python 3.11 wait_for can swallow a cancel racing its timeout (stop() hung)
            async with asyncio.timeout(timeout):
                await self._kick.wait()
        except TimeoutError:
            pass

    async def _next_rows(self, store, k: int) -> tuple[list[outbox.Row], bool]:
        # explicit resend requests first (the county is waiting for exactly these), then the pending backlog
        while self._resend:
            a, b = self._resend[0]
            rows = await store.call(outbox.fetch_range, store, a, b, min(k, FETCH_BATCH))
            out = [r for r in rows if r.sent]
            if not rows or rows[-1].seq >= b:
                self._resend.popleft()
            else:
                self._resend[0] = [rows[-1].seq + 1, b]
            self._resend_total -= (rows[-1].seq - a + 1) if rows else (b - a + 1)
            if out:
                return out, True
        if len(self._buffer) < max(k, FETCH_BATCH // 2) and not self._exhausted and (
                self._prefetch is None or self._prefetch.done()):
            self._start_prefetch(store)
        if not self._buffer and self._prefetch is not None and not self._prefetch.done():
            await asyncio.shield(self._prefetch)
        out = []
        while self._buffer and len(out) < k:
            out.append(self._buffer.popleft())
        return out, False

    def _start_prefetch(self, store) -> None:
        """Read the next pending rows in the background so the window never waits on SQLite."""
        gen, after = self._gen, self._cursor

        async def job():
            rows = await store.call(outbox.fetch_pending, store, after, FETCH_BATCH)
            if gen != self._gen:  # a rewind or reconnect happened meanwhile: this read is stale
                return
            if rows:
                self._cursor = rows[-1].seq
                self._buffer.extend(r for r in rows if r.seq not in self._acked_set
                                    and r.seq not in self._inflight_seqs)
                self.max_buffer = max(self.max_buffer, len(self._buffer))
            if len(rows) < FETCH_BATCH:
                self._exhausted = True  # until the next commit
            self._kick.set()

        self._prefetch = asyncio.create_task(job(), name="uplink-prefetch")

    def _envelope(self, row: outbox.Row) -> bytes:
        # the stored body is already canonical JSON; splice it instead of parsing and re-serialising
        return ('{"event":%s,"event_id":"%s","gateway_id":%s,"schema":1,"seq":%d}'
                % (row.body, row.event_id, self._gw_json, row.seq)).encode()

    def _row_properties(self, row: outbox.Row, resend: bool) -> FastProperties:
        """Event PUBLISH properties; the constant part is encoded once (this runs for every event)."""
        if self._props_prefix is None:
            fixed = publish_properties(content_type="application/json", user=[("schema", "1")],
                                       expiry_s=self.cfg.message_expiry_s or None).pack()
            # strip the varint length of the template; it is recomputed below
            i = 0
            while fixed[i] & 0x80:
                i += 1
            self._props_prefix = fixed[i + 1:]
        seq, eid = str(row.seq).encode(), row.event_id.encode()
        body = (self._props_prefix + b"\x26\x00\x03seq" + len(seq).to_bytes(2, "big") + seq
                + b"\x26\x00\x08event_id" + len(eid).to_bytes(2, "big") + eid
                + (b"\x26\x00\x06resend\x00\x011" if resend else b""))
        return FastProperties(_varint(len(body)) + body, "event properties")

    def _publish_row(self, conn: MqttConnection, row: outbox.Row, resend: bool) -> bool:
        props = self._row_properties(row, resend)
        rc, mid = conn.publish(self.topics.event(row.kind), self._envelope(row), 1, False, props)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._count_publish_error(rc)
            if not resend:
                self._rewind(row.seq)
            else:
                self._resend.appendleft([row.seq, row.seq])
            return False
        kind = "resend" if resend else "row"
        self._inflight[mid] = _Pending(kind, row.seq, row, row.media_ids() if not resend else [],
                                       t_pub=time.monotonic())
        if not resend:
            self._rows_inflight += 1
            self._inflight_seqs.add(row.seq)
            self.c["published"] += 1
        else:
            self.c["resent"] += 1
        return True

    def _rewind(self, seq: int) -> None:
        target = seq - 1
        self._rewind_to = target if self._rewind_to is None else min(self._rewind_to, target)

    # ---- acknowledgements (called by paho inside loop_read, in the event loop) ------------------------------
    def _on_publish(self, mid: int, reason: int, name: str) -> None:
        p = self._inflight.pop(mid, None)
        if p is None:
            return
        self._kick.set()
        if p.kind == "row":
            self._rows_inflight -= 1
            self._inflight_seqs.discard(p.seq)
        if reason < 0x80:
            if p.kind == "row":
                self.c["acked"] += 1
                self._acked.append(p.seq)
                self._acked_set.add(p.seq)
                for m in p.media:
                    self._acked_media.append((p.seq, p.row.event_id, m))
                self._consecutive_failures = 0
                if self.window < self.row_cap and self.c["acked"] % max(1, self.window) == 0:
                    self.window += 1  # additive increase after a quota backoff
                self._flush_evt.set()
                for listener in self.ack_listeners:
                    listener([p.seq])
            elif p.kind == "resend":
                self.c["resend_acked"] += 1
            if p.done is not None and not p.done.done():
                p.done.set_result(reason)
            return
        # reason >= 0x80: the broker did NOT take it. Never mark sent; count; retry later in seq order.
        self.rejected[f"{name} (0x{reason:02X})"] += 1
        self.c["rejected"] += 1
        if p.kind == "row":
            self._failed.append((p.seq, reason))
            self._flush_evt.set()
            self._rewind(p.seq)
            self._consecutive_failures += 1
            if reason == QUOTA_EXCEEDED:
                self.window = max(1, self.window // 2)
                delay = 0.05
            else:
                delay = min(30.0, 0.1 * 2 ** min(self._consecutive_failures, 9))
            self._retry_at = max(self._retry_at, time.monotonic() + delay)
            self._rlog(f"reject:{reason}", logging.WARNING, f"broker refused a publish ({name}, 0x{reason:02X}); "
                       "the event stays queued and is retried", seq=p.seq, topic=self.topics.event(p.row.kind), reason=name,
                       reason_code=f"0x{reason:02X}", window=self.window)
        elif p.kind == "resend":
            self._resend.appendleft([p.seq, p.seq])
            self._resend_total += 1
        else:
            if p.done is not None and not p.done.done():
                p.done.set_exception(ConnectFailed(f"broker refused: {name} (0x{reason:02X})"))
                p.done.exception()
            self._rlog(f"reject-aux:{reason}", logging.WARNING,
                       f"broker refused a message: {name} (0x{reason:02X})"
                       + ("; a broker that maps the client certificate to the topic ACL needs its CN to equal the "
                          "gateway id" if reason == 0x87 else ""), reason_code=f"0x{reason:02X}")

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_evt.wait()
            await asyncio.sleep(0.05)  # batch PUBACKs: one fsync per ~50 ms, not per ack
            self._flush_evt.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write acknowledged seqs to SQLite (sent_ms) in one transaction."""
        acked, media, failed = self._acked, self._acked_media, self._failed
        if not (acked or failed):
            return
        self._acked, self._acked_media, self._failed = [], [], []
        try:
            await self.ctx.store.call(outbox.mark_sent, self.ctx.store, acked, self.ctx.clock.time_ms(), media, failed)
        except Exception as exc:
            # keep them: they are delivered, so re-marking later is right; until then they are never re-fetched
            self._acked[:0], self._acked_media[:0], self._failed[:0] = acked, media, failed
            self.c["flush_failures"] += 1
            log.error("could not record sent events; will retry", extra={"error": str(exc), "rows": len(acked)})
            await asyncio.sleep(0.5)
            self._flush_evt.set()
            return
        for s in acked:
            self._acked_set.discard(s)
        if media and self.media is not None:
            self.media.kick()

    # ---- resend --------------------------------------------------------------------------------------------
    def queue_resend(self, ranges: list[list[int]]) -> int:
        n = 0
        for a, b in ranges:
            self._resend.append([a, b])
            self._resend_total += b - a + 1
            n += b - a + 1
        self._kick.set()
        return n

    # ---- telemetry, eviction, stats --------------------------------------------------------------------------
    async def _stats(self) -> outbox.Stats:
        self.last_stats = await self.ctx.store.call(outbox.stats, self.ctx.store)
        return self.last_stats

    async def _telemetry_loop(self) -> None:
        from .telemetry import build_telemetry

        while True:
            await self.ctx.clock.sleep(self.cfg.telemetry_interval_s)
            if not self.connected:
                self.c["telemetry_skipped_offline"] += 1
                continue
            try:
                body = await build_telemetry(self)
            except Exception:
                log.exception("telemetry failed")
                continue
            self.publish_aux(self.topics.telemetry, body, label="telemetry")

    async def _maintenance_loop(self) -> None:
        last_forget = -1e18
        while True:
            try:  # asyncio.timeout: wait_for can swallow a racing cancel on Python 3.11
                async with asyncio.timeout(10.0):
                    await self._evict_evt.wait()
            except TimeoutError:
                pass
            self._evict_evt.clear()
            try:
                await self.enforce_budget()
                self._raise_eviction_alert()  # evictions held back by the once-a-minute limit
                now = self.ctx.clock.monotonic()
                if now - last_forget >= 3600:
                    last_forget = now
                    keep_ms = int(self.config.storage.sent_retention_days * 86400_000)
                    await self.ctx.store.call(outbox.forget_evicted, self.ctx.store, self.ctx.clock.time_ms() - keep_ms)
            except Exception:
                log.exception("outbox maintenance failed")
            await asyncio.sleep(0.2)  # coalesce bursts of commits

    async def enforce_budget(self) -> outbox.Eviction | None:
        await self.flush()
        ev = await self.ctx.store.call(outbox.evict_over_budget, self.ctx.store, self.budget_bytes,
                                       self.ctx.clock.time_ms(), set(self._inflight_seqs) | set(self._acked_set))
        if ev is None:
            return None
        self.evicted_by_kind.update(ev.by_kind)
        self.evicted_by_priority.update(ev.by_priority)
        self.c["evicted"] += ev.rows
        self._unalerted.update(ev.by_kind)
        self._last_used = ev.used_bytes
        log.error("outbox over its disk budget: evicted unsent events (lowest priority first)",
                  extra={"evicted": ev.rows, "by_kind": ev.by_kind, "budget_bytes": self.budget_bytes,
                         "used_bytes": ev.used_bytes, "first_seq": ev.seqs[0] if ev.seqs else None})
        self._raise_eviction_alert()
        return ev

    def _raise_eviction_alert(self) -> None:
        """One gateway.storage_eviction event per minute at most, carrying every eviction since the last one."""
        now = self.ctx.clock.monotonic()
        if not self._unalerted or now - self._last_alert < 60.0:
            return
        counts, self._unalerted = dict(self._unalerted), collections.Counter()
        self._last_alert = now
        try:
            self.ctx.emit_new("gateway.storage_eviction", self.config.gateway.id,
                              {"evicted": counts, "budget_bytes": self.budget_bytes, "used_bytes": self._last_used})
        except Exception:
            log.exception("could not raise the storage eviction event")

    # ---- shutdown ------------------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        conn = self.conn
        try:
            if conn is not None and conn.is_open:
                stats = await self._stats()
                fut = self.publish_aux(self.topics.status, self._status("stopped", stats), retain=True,
                                       label="status", want_ack=True)
                self._drain_aux(conn)
                deadline = time.monotonic() + 2.0
                # give PUBACKs for what is in flight (and the stopped status) a moment, then leave cleanly
                while time.monotonic() < deadline and conn.is_open and (
                        self._rows_inflight or (fut is not None and not fut.done())):
                    await asyncio.sleep(0.02)
                await self.flush()
                await conn.close(timeout=1.0)
            else:
                await self.flush()
        except Exception:
            log.exception("uplink shutdown was not clean")
        finally:
            self.connected = False

    def health(self) -> dict:
        st = self.last_stats
        return {
            "connected": self.connected, "broker": self.cfg.broker, "window": self.window, "row_cap": self.row_cap,
            "inflight": len(self._inflight), "rows_inflight": self._rows_inflight, "buffered": len(self._buffer),
            "resend_queued": max(0, self._resend_total), "depth": st.depth if st else None,
            "pending_bytes": st.bytes if st else None, "last_seq": st.last_seq if st else None,
            "max_paho_queue": self.max_paho_queue, "max_buffer": self.max_buffer,
            "rejected": dict(self.rejected), "evicted_by_kind": dict(self.evicted_by_kind),
            "evicted_by_priority": dict(self.evicted_by_priority), "last_disconnect": self.last_disconnect,
            "last_connect_error": self.last_connect_error,
            "receive_maximum": self.connack.receive_maximum if self.connack else None,
            **{k: v for k, v in self.c.items()},
            "commands": self.commands.health() if self.commands else {},
            "media": self.media.health() if self.media else {},
        }
