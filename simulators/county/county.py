"""County platform simulator: what a county consumer must do to get every event exactly once, in order.

- shared subscriptions ($share/county/...) as a consumer fleet on a clustered broker would use;
- persistent MQTT 5 session and manual acks: a message is PUBACKed only after its SQLite commit, so a
  consumer crash never loses what the broker already handed over;
- validates every message against cloud_bridge/schemas (counted in schema_errors);
- de-duplicates by (gateway_id, seq), re-orders by seq, detects gaps (a missing seq below the highest seq seen,
  or below the gateway's reported `pending_from_seq`), asks the gateway to `resend` them after a grace period,
  and records ranges the gateway answers as evicted/unavailable as lost (never asked again).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import sqlite3
import time
from typing import Callable
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from cloud_bridge.aio import ConnectFailed, MqttConnection, publish_properties, user_properties
from cloud_bridge.topics import county_filters, parse
from cloud_bridge.validate import validate_message
from edge.events import format_ts

log = logging.getLogger("simulators.county")

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL,
  kind TEXT NOT NULL, topic TEXT NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (gateway_id, seq));
CREATE TABLE IF NOT EXISTS gateways (gateway_id TEXT PRIMARY KEY, base TEXT NOT NULL, status TEXT,
  telemetry TEXT, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS media (media_id TEXT PRIMARY KEY, gateway_id TEXT NOT NULL, event_id TEXT,
  bytes INTEGER NOT NULL, sha256 TEXT, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS replies (correlation TEXT PRIMARY KEY, gateway_id TEXT NOT NULL, command TEXT NOT NULL,
  body TEXT NOT NULL, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lost (gateway_id TEXT NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
  why TEXT NOT NULL, PRIMARY KEY (gateway_id, from_seq))
"""


@dataclass
class GatewayTrack:
    gateway_id: str
    base: str = ""
    contiguous: int = 0  # every seq 1..contiguous received (or lost)
    above: set[int] = field(default_factory=set)  # received seqs > contiguous
    max_seq: int = 0
    reported_pending_from: int = 1  # gateway says: every seq below this left its outbox
    received: int = 0
    unique: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    resent_recovered: int = 0
    lost: list[list[int]] = field(default_factory=list)
    lost_set: set[int] = field(default_factory=set)
    gap_seen: dict[tuple[int, int], float] = field(default_factory=dict)  # gap -> first seen (monotonic)
    requested: dict[tuple[int, int], float] = field(default_factory=dict)  # gap -> last request time
    resend_requests: int = 0
    status: dict | None = None
    telemetry: dict | None = None

    def have(self, seq: int) -> bool:
        return seq <= self.contiguous or seq in self.above or seq in self.lost_set

    def add(self, seq: int) -> bool:
        if self.have(seq):
            return False
        if seq < self.max_seq:
            self.out_of_order += 1
        self.above.add(seq)
        self.max_seq = max(self.max_seq, seq)
        self._advance()
        return True

    def mark_lost(self, a: int, b: int) -> None:
        for s in range(a, b + 1):
            if not self.have(s):
                self.lost_set.add(s)
        self.lost.append([a, b])
        self._advance()

    def _advance(self) -> None:
        while True:
            n = self.contiguous + 1
            if n in self.above:
                self.above.discard(n)
            elif n in self.lost_set:
                pass
            else:
                break
            self.contiguous = n

    def upper(self) -> int:
        return max(self.max_seq, self.reported_pending_from - 1)

    def gaps(self, limit: int = 1000) -> list[tuple[int, int]]:
        """Missing seq ranges between what is contiguous and the highest seq known to exist."""
        top = self.upper()
        out: list[tuple[int, int]] = []
        s = self.contiguous + 1
        for x in sorted(x for x in (self.above | self.lost_set) if x > self.contiguous) + [top + 1]:
            x = min(x, top + 1)
            if x > s:
                out.append((s, x - 1))
                if len(out) >= limit:
                    break
            s = max(s, x + 1)
            if s > top:
                break
        return out


class County:
    def __init__(self, broker: str, db_path: str | Path, *, prefix: str = "cgw/v1", group: str = "county",
                 client_id: str = "county-sim-1", tls=None, username: str | None = None, password: str | None = None,
                 request_resends: bool = True, gap_grace_s: float = 2.0, resend_retry_s: float = 5.0,
                 max_resend_span: int = 10_000, keepalive: int = 20, receive_maximum: int | None = None,
                 clock: Callable[[], float] = time.time):
        # `clock`: the county's wall clock; the demo passes its compressed clock so command ages agree.
        self._time = clock
        u = urlparse(broker)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (8883 if u.scheme == "mqtts" else 1883)
        self.prefix, self.group, self.client_id = prefix, group, client_id
        self.tls, self.username, self.password = tls, username, password
        self.request_resends = request_resends
        self.gap_grace_s, self.resend_retry_s = gap_grace_s, resend_retry_s
        self.max_resend_span = max_resend_span
        self.keepalive = keepalive
        self.receive_maximum = receive_maximum
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        for stmt in SCHEMA.strip().split(";\n"):
            self.db.execute(stmt)
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="county-db")
        self.gw: dict[str, GatewayTrack] = {}
        self.received = 0
        self.schema_errors = 0
        self.schema_error_samples: list[str] = []
        self.by_channel: dict[str, int] = {}
        self.topics_seen: set[str] = set()
        self.media_received = 0
        self.replies: dict[str, dict] = {}
        self._reply_waiters: dict[str, asyncio.Future] = {}
        self._batch: list = []
        self._batch_evt = asyncio.Event()
        self.conn: MqttConnection | None = None
        self.connected = asyncio.Event()
        self.commits = 0
        self.subscribes = 0
        self._pending_lost: list[tuple] = []
        self._load()

    # ---- persistence ------------------------------------------------------------------------------------
    def _load(self) -> None:
        for gid, base in self.db.execute("SELECT gateway_id, base FROM gateways"):
            self.gw[gid] = GatewayTrack(gid, base)
        for gid, seq in self.db.execute("SELECT gateway_id, seq FROM messages ORDER BY gateway_id, seq"):
            t = self.gw.setdefault(gid, GatewayTrack(gid))
            t.add(seq)
            t.unique += 1
        for gid, a, b in self.db.execute("SELECT gateway_id, from_seq, to_seq FROM lost"):
            self.gw.setdefault(gid, GatewayTrack(gid)).mark_lost(a, b)

    def _commit(self, rows: list[tuple], gws: list[tuple], media: list[tuple], replies: list[tuple],
                lost: list[tuple]) -> list[bool]:
        new = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.cursor()
            for r in rows:
                cur.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", r)
                new.append(cur.rowcount == 1)
            cur.executemany("INSERT INTO gateways VALUES (?, ?, ?, ?, ?) ON CONFLICT(gateway_id) DO UPDATE SET "
                            "base = excluded.base, status = coalesce(excluded.status, gateways.status), "
                            "telemetry = coalesce(excluded.telemetry, gateways.telemetry), "
                            "updated_ms = excluded.updated_ms", gws)
            cur.executemany("INSERT OR IGNORE INTO media VALUES (?, ?, ?, ?, ?, ?)", media)
            cur.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)", replies)
            cur.executemany("INSERT OR REPLACE INTO lost VALUES (?, ?, ?, ?)", lost)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return new

    # ---- MQTT ----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        tasks = [asyncio.create_task(self._commit_loop()), asyncio.create_task(self._gap_loop())]
        try:
            backoff = 0.2
            while True:
                conn = MqttConnection(client_id=self.client_id, host=self.host, port=self.port,
                                      keepalive=self.keepalive, tls=self.tls, username=self.username,
                                      password=self.password, clean_start=False, session_expiry_s=24 * 3600,
                                      manual_ack=True, max_inflight=100, receive_maximum=self.receive_maximum,
                                      connect_timeout_s=5)
                # the broker re-sends unacknowledged messages right after CONNACK: ack them on *this* connection
                conn._on_message = functools.partial(self._on_message, conn=conn)
                try:
                    await conn.connect()
                    codes = await conn.subscribe([(t, 1) for t in county_filters(self.prefix, self.group).values()],
                                                 no_local=False)
                    if any(c >= 0x80 for c in codes):
                        log.error("county subscriptions refused", extra={"codes": codes})
                    self.subscribes += 1
                    # lets a test (or an operator) see that this consumer is subscribed again after a broker restart
                    await asyncio.get_running_loop().run_in_executor(self.pool, lambda: self.db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('subscribes', ?)", (str(self.subscribes),)))
                except (ConnectFailed, asyncio.TimeoutError) as exc:
                    log.info("county cannot connect; retrying", extra={"error": str(exc)})
                    await asyncio.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
                backoff = 0.2
                self.conn = conn
                self.connected.set()
                reason = await conn.closed
                self.connected.clear()
                self.conn = None
                log.info("county disconnected", extra={"reason": reason})
                await asyncio.sleep(0.1)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.conn is not None:
                await self.conn.close(timeout=1)
            self.connected.clear()

    def _on_message(self, msg, conn=None) -> None:
        self._batch.append((msg, conn))
        self._batch_evt.set()

    async def _commit_loop(self) -> None:
        while True:
            await self._batch_evt.wait()
            self._batch_evt.clear()
            batch, self._batch = self._batch, []
            if not batch:
                continue
            try:
                await self._commit_batch(batch)
            except Exception:  # never stop consuming; unacked messages come back from the broker
                log.exception("county commit failed; the batch stays unacknowledged")
                await asyncio.sleep(0.5)

    async def _commit_batch(self, batch: list) -> None:
        loop = asyncio.get_running_loop()
        rows, gws, media, replies, meta = [], [], [], [], []
        now = int(self._time() * 1000)
        for msg, conn in batch:
            item = self._classify(msg, now)
            meta.append(item)
            if item is None:
                continue
            kind, data = item["kind"], item
            if kind == "event":
                rows.append(data["row"])
            elif kind in ("status", "telemetry"):
                gws.append(data["gw"])
            elif kind == "media":
                media.append(data["media"])
            elif kind == "reply":
                replies.append(data["reply"])
            if data.get("gw_base"):
                gws.append(data["gw_base"])
        lost = self._pending_lost
        self._pending_lost = []
        new = await loop.run_in_executor(self.pool, self._commit, rows, gws, media, replies, lost)
        self.commits += 1
        it = iter(new)
        for item in meta:
            if item is not None and item["kind"] == "event":
                t = self.gw[item["gateway_id"]]
                if next(it):
                    t.add(item["seq"])
                    t.unique += 1
                    if item["resend"]:
                        t.resent_recovered += 1
                else:
                    t.duplicates += 1
            elif item is not None and item["kind"] == "reply":
                self._on_reply(item)
        # PUBACK only now: everything in the batch is committed
        for msg, conn in batch:
            if conn is not None and msg.qos > 0:
                conn.ack(msg.mid, msg.qos)

    def _classify(self, msg, now: int) -> dict | None:
        topic = msg.topic
        payload = bytes(msg.payload or b"")
        props = getattr(msg, "properties", None)
        p = {"content_type": getattr(props, "ContentType", None), "user": user_properties(props)}
        self.received += 1
        self.topics_seen.add(topic)
        where = parse(topic, self.prefix)
        probs = validate_message(topic, payload, p, self.prefix)
        channel = where[3] if where else "?"
        self.by_channel[channel] = self.by_channel.get(channel, 0) + 1
        if probs:
            self.schema_errors += 1
            if len(self.schema_error_samples) < 20:
                self.schema_error_samples.append(f"{topic}: {probs[0]}")
            log.warning("schema error", extra={"topic": topic, "problems": probs[:3]})
            return None
        county, compound, gid, channel, rest = where
        base = f"{self.prefix}/{county}/{compound}/{gid}"
        t = self.gw.get(gid)
        first = t is None or not t.base
        t = self.gw.setdefault(gid, GatewayTrack(gid))
        t.base = base
        gw_base = (gid, base, None, None, now) if first else None
        if channel in ("event", "alert"):
            doc = json.loads(payload)
            t.received += 1
            return {"kind": "event", "gateway_id": gid, "seq": doc["seq"], "resend": p["user"].get("resend") == "1",
                    "row": (gid, doc["seq"], doc["event_id"], doc["event"]["kind"], topic, now,
                            payload.decode()), "gw_base": gw_base}
        if channel == "status":
            doc = json.loads(payload)
            t.status = doc
            t.reported_pending_from = max(t.reported_pending_from, doc["pending_from_seq"])
            return {"kind": "status", "gw": (gid, base, payload.decode(), None, now)}
        if channel == "telemetry":
            doc = json.loads(payload)
            t.telemetry = doc
            t.reported_pending_from = max(t.reported_pending_from, doc["outbox"]["pending_from_seq"])
            return {"kind": "telemetry", "gw": (gid, base, None, payload.decode(), now)}
        if channel == "media":
            self.media_received += 1
            import hashlib
            return {"kind": "media", "media": (rest[0], gid, p["user"].get("event_id"), len(payload),
                                               hashlib.sha256(payload).hexdigest(), now), "gw_base": gw_base}
        if channel == "reply":
            corr = getattr(props, "CorrelationData", None)
            key = corr.hex() if corr else f"nocorr-{uuid.uuid4().hex}"
            doc = json.loads(payload)
            return {"kind": "reply", "key": key, "doc": doc, "gateway_id": gid,
                    "reply": (key, gid, doc["command"], payload.decode(), now), "gw_base": gw_base}
        return None

    def _on_reply(self, item: dict) -> None:
        doc, gid = item["doc"], item["gateway_id"]
        self.replies[item["key"]] = doc
        fut = self._reply_waiters.pop(item["key"], None)
        if fut is not None and not fut.done():
            fut.set_result(doc)
        if doc.get("command") == "resend" and doc.get("ok"):
            t = self.gw[gid]
            res = doc["result"]
            for why in ("evicted", "unavailable"):
                for a, b in res.get(why, []):
                    t.mark_lost(a, b)
                    self._pending_lost.append((gid, a, b, why))
                    log.warning("gateway cannot resend; recorded as lost", extra={"gateway": gid, "from_seq": a,
                                                                                  "to_seq": b, "why": why})

    # ---- commands -----------------------------------------------------------------------------------------
    async def command(self, gateway_id: str, name: str, args: dict | None = None, *, timeout: float = 10.0,
                      payload: bytes | None = None, expires_at: str | None = None, wait: bool = True,
                      user: list | None = None) -> dict | None:
        t = self.gw.get(gateway_id)
        if t is None or not t.base:
            raise KeyError(f"gateway {gateway_id} not seen yet")
        conn = self.conn
        if conn is None:
            raise ConnectFailed("county not connected")
        corr = uuid.uuid4().bytes
        body = payload if payload is not None else json.dumps(
            {"id": corr.hex()[:12], "issued_at": format_ts(int(self._time() * 1000)), "args": args or {},
             **({"expires_at": expires_at} if expires_at else {})}).encode()
        fut = asyncio.get_running_loop().create_future()
        self._reply_waiters[corr.hex()] = fut
        props = publish_properties(content_type="application/json", response_topic=f"{t.base}/reply/{name}",
                                   correlation=corr, expiry_s=60, user=user)
        conn.publish(f"{t.base}/cmd/{name}", body, 1, False, props)
        if not wait:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._reply_waiters.pop(corr.hex(), None)

    async def _gap_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if not self.request_resends or self.conn is None:
                continue
            now = time.monotonic()
            for t in list(self.gw.values()):
                if not t.base:
                    continue
                current = set()
                for a, b in t.gaps():
                    for s in range(a, b + 1, self.max_resend_span):
                        g = (s, min(b, s + self.max_resend_span - 1))
                        current.add(g)
                        first = t.gap_seen.setdefault(g, now)
                        if now - first < self.gap_grace_s:
                            continue
                        if now - t.requested.get(g, -1e9) < self.resend_retry_s:
                            continue
                        t.requested[g] = now
                        t.resend_requests += 1
                        log.info("requesting resend", extra={"gateway": t.gateway_id, "from_seq": g[0],
                                                             "to_seq": g[1]})
                        try:
                            await self.command(t.gateway_id, "resend", {"from_seq": g[0], "to_seq": g[1]}, wait=False)
                        except (ConnectFailed, KeyError):
                            pass
                for g in list(t.gap_seen):
                    if g not in current:
                        t.gap_seen.pop(g, None)
                        t.requested.pop(g, None)

    # ---- results -------------------------------------------------------------------------------------------
    def report(self) -> dict:
        per = {}
        for gid, t in sorted(self.gw.items()):
            gaps = t.gaps(limit=100_000)
            per[gid] = {"received": t.received, "unique": t.unique, "duplicates": t.duplicates,
                        "max_seq": t.max_seq, "contiguous_to": t.contiguous, "out_of_order": t.out_of_order,
                        "gaps_open": len(gaps), "missing": sum(b - a + 1 for a, b in gaps),
                        "gaps_resent": t.resent_recovered, "resend_requests": t.resend_requests,
                        "lost": t.lost, "status": (t.status or {}).get("state"),
                        "pending_from_seq": t.reported_pending_from}
        return {"received": self.received, "unique": sum(v["unique"] for v in per.values()),
                "duplicates": sum(v["duplicates"] for v in per.values()), "schema_errors": self.schema_errors,
                "gaps_open": sum(v["gaps_open"] for v in per.values()),
                "gaps_resent": sum(v["gaps_resent"] for v in per.values()),
                "media": self.media_received, "by_channel": dict(self.by_channel),
                "schema_error_samples": self.schema_error_samples, "per_gateway": per}

    def ordered(self, gateway_id: str) -> list[tuple[int, str]]:
        """(seq, event_id) in seq order: the re-ordered stream a downstream consumer reads."""
        return list(self.db.execute("SELECT seq, event_id FROM messages WHERE gateway_id = ? ORDER BY seq",
                                    (gateway_id,)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.db.close()
