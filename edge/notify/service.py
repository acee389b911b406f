"""The push service: alert events in, durable pushes out (WeCom, DingTalk, Feishu, webhooks).

Flow: the bus hands every committed `alert` event to `on_alert`, which matches it against the routes and
writes one outbox row per channel (plus delayed escalation rows). A worker sends due rows; a failure is
retried with exponential backoff, a row older than alerts.push_max_age_h is given up (logged, counted).
Because rows are in SQLite and a cursor remembers the last alert event handled, nothing is lost when the
gateway restarts or the internet is down: alert events after the cursor are replayed at start (the outbox's
unique dedup key makes the replay idempotent) and pending rows simply become due again.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
from typing import Any

import aiohttp

from edge.config.base import SecretError
from edge.events import Event
from edge.runtime.component import Component

from .channels import CHANNELS, PushError
from .outbox import PushOutbox
from .routing import quiet_until_ms, route_matches

log = logging.getLogger("edge.notify")

CURSOR_KEY = "notify.cursor_ms"
ENABLED_KEY = "notify.enabled_ms"
REPLAY_MARGIN_MS = 60_000
UNACKED = ("raised", "updated")
PURGE_AFTER_MS = 7 * 86400_000
# The bus drops events for a subscriber whose queue is full (they stay in the store); alert changes are rare,
# but a periodic look at the recent ones makes sure none of them misses its push (the dedup key makes it free).
RECONCILE_EVERY_S = 600.0
RECONCILE_WINDOW_MS = 3600_000
IDLE_S = 300.0  # longest sleep: new rows wake the worker at once; this only bounds the effect of clock steps


class Notifier(Component):
    name = "notify"

    def __init__(self) -> None:
        self.ctx = None
        self.outbox: PushOutbox | None = None
        self._wake: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._next_send: dict[str, float] = {}  # channel id -> clock.monotonic() of the next allowed send
        self._last_purge = 0.0
        self._last_reconcile = 0.0
        self._enabled_ms = 0
        self.stats: dict[str, Any] = {"enqueued": 0, "sent": 0, "retries": 0, "failed": 0, "given_up": 0,
                                      "cancelled": 0, "replayed": 0, "reconciled": 0, "errors": 0}
        self.channel_stats: dict[str, dict[str, Any]] = {}
        self.pending = 0
        self.last_error: str | None = None
        self.loops = 0  # delivery passes so far; with `sleeping`, lets tests step a FakeClock in lockstep
        self.sleeping = False
        self.wake_at = 0.0

    # ---- wiring --------------------------------------------------------------------------------------------
    def attach(self, ctx) -> None:
        """Subscribe before the bus starts so no alert change is missed; publish the service handle."""
        if self.ctx is not None:
            return
        self.ctx = ctx
        self.outbox = PushOutbox(ctx.store)
        ctx.services["notify"] = self
        ctx.subscribe("notify", self.on_alert, kinds=["alert"])

    @property
    def config(self):
        return self.ctx.config  # read each time: the console may replace ctx.config at run time

    def health(self) -> dict[str, Any]:
        return {**self.stats, "pending": self.pending, "last_error": self.last_error,
                "channels": {k: dict(v) for k, v in self.channel_stats.items()}}

    def _wakeup(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ---- planning: alert event -> outbox rows ------------------------------------------------------------------
    async def on_alert(self, event: Event) -> None:
        await self.handle(event)
        await self.ctx.store.call(self.ctx.store.kv_set, CURSOR_KEY, event.ts_ms)

    async def handle(self, event: Event) -> int:
        p = event.payload
        now = self.ctx.clock.time_ms()
        if p.get("state") in ("acknowledged", "resolved", "cleared"):
            n = await self.ctx.store.call(self.outbox.cancel_escalations, p["alert_id"], now,
                                          f"alert {p['state']}")
            self.stats["cancelled"] += n
        rows = self.plan(event, now)
        if not rows:
            return 0
        added = await self.ctx.store.call(self.outbox.enqueue, rows)
        self.stats["enqueued"] += added
        if added:
            self._wakeup()
        return added

    def plan(self, event: Event, now_ms: int) -> list[dict[str, Any]]:
        cfg = self.config
        p = event.payload
        state, alert_kind, severity = p.get("state"), p.get("alert_kind", ""), event.severity.value
        places, place_text = self.places(p.get("zone"), event.source)
        tz = cfg.gateway.timezone
        max_age_ms = cfg.alerts.push_max_age_h * 3600_000
        if now_ms - event.ts_ms > max_age_ms:
            return []  # a replayed change too old to matter any more
        facts = {
            "alert_id": p["alert_id"], "alert_kind": alert_kind, "state": state, "severity": severity,
            "title": p.get("title", ""), "zone": p.get("zone"), "place": place_text, "ts_ms": event.ts_ms,
            "tz": tz, "compound": cfg.gateway.name or cfg.gateway.compound_id, "gateway_id": cfg.gateway.id,
            "compound_id": cfg.gateway.compound_id, "actor": p.get("actor"), "note": p.get("note"),
            "link": self.alert_link(p["alert_id"]),
        }
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()

        def add(route, channel: str, purpose: str, due: int, extra: dict | None = None) -> None:
            if (channel, purpose) in seen:
                return  # two routes to the same group chat: one message
            seen.add((channel, purpose))
            rows.append({"dedup": f"{event.id}|{channel}|{purpose}", "alert_id": p["alert_id"],
                         "event_id": event.id, "route": route.name, "channel": channel, "purpose": purpose,
                         "facts": facts | {"purpose": purpose} | (extra or {}), "created_ms": now_ms,
                         "due_ms": due})

        for route in cfg.alerts.routes:
            if not route_matches(route, state=state, alert_kind=alert_kind, severity=severity, places=places):
                continue
            # critical alerts are never held back by quiet hours
            quiet = None if severity == "critical" else quiet_until_ms(route.quiet_hours, now_ms, tz)
            due = quiet or now_ms
            for ch in route.channels:
                add(route, ch, "push", due)
            if state == "raised" and route.escalate_after_min:
                esc_due = due + int(route.escalate_after_min * 60_000)
                if severity != "critical":
                    esc_due = quiet_until_ms(route.quiet_hours, esc_due, tz) or esc_due
                for ch in route.escalate_to or route.channels:
                    add(route, ch, "escalation", esc_due, {"escalate_after_min": route.escalate_after_min})
        return rows

    def places(self, zone: str | None, source: str) -> tuple[set[str], str]:
        """Ids a route may name for this alert, and a human description of where it is."""
        cfg = self.config
        ids = {source}
        text = ""
        if zone:
            ids.add(zone)
            ids.add(zone.split(":", 1)[0])  # door alerts use "controller:doorN"
            z = next((z for z in cfg.zones if z.id == zone), None)
            st = next((s for s in cfg.stations if s.id == zone), None)
            if z is not None:
                ids.add(z.camera)
                if z.station:
                    ids.add(z.station)
                cam = cfg.camera(z.camera)
                text = z.name or z.id
                if cam is not None and cam.name and cam.name != text:
                    text += f" · {cam.name}"
            elif st is not None:
                text = st.name or st.id
            else:
                cam = cfg.camera(zone)
                text = (cam.name if cam is not None and cam.name else zone)
        return ids, text

    def alert_link(self, alert_id: str) -> str:
        web = self.config.web
        base = web.public_url
        if not base:
            host = web.host if web.host not in ("0.0.0.0", "::", "") else socket.gethostname()
            port = getattr(self.ctx.services.get("web"), "port", None) or web.port
            base = f"http://{host}:{port}"
        return f"{base}/#/alerts/{alert_id}"

    # ---- delivery ------------------------------------------------------------------------------------------------
    async def run(self, ctx) -> None:
        self.attach(ctx)
        self._wake = asyncio.Event()
        self._session = aiohttp.ClientSession()
        try:
            await self.replay()
            while True:
                try:
                    delay = await self.deliver_due()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a broken row or store hiccup must not end delivery for good
                    self.stats["errors"] += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("push delivery loop failed; retrying")
                    delay = 5.0
                await self._wait(delay)
        finally:
            await self._session.close()
            self._session = None

    async def replay(self) -> int:
        """Plan pushes for alert changes committed after the last one handled (a crash between the commit
        and the outbox write, or alerts raised while this component was restarting)."""
        store = self.ctx.store
        cursor = await store.call(store.kv_get, CURSOR_KEY)
        now = self.ctx.clock.time_ms()
        if cursor is None:
            await store.call(store.kv_set, CURSOR_KEY, now)  # first start: no history to push
            await store.call(store.kv_set, ENABLED_KEY, now)
            self._enabled_ms = now
            return 0
        self._enabled_ms = await store.call(store.kv_get, ENABLED_KEY, 0)
        events = await store.call(store.query_events, kind="alert", since_ms=int(cursor) - REPLAY_MARGIN_MS,
                                  limit=10_000)
        added = 0
        for e in reversed(events):
            added += await self.handle(e)
        self.stats["replayed"] += added
        if added:
            log.info("planned pushes for alert changes made while notify was not running",
                     extra={"rows": added})
        if events:
            await store.call(store.kv_set, CURSOR_KEY, max(e.ts_ms for e in events))
        return added

    async def reconcile(self, since_ms: int) -> int:
        store = self.ctx.store
        since_ms = max(since_ms, self._enabled_ms)  # never push what happened before pushes were configured
        events = await store.call(store.query_events, kind="alert", since_ms=since_ms, limit=10_000)
        added = 0
        for e in reversed(events):
            added += await self.handle(e)
        if added:
            self.stats["reconciled"] = self.stats.get("reconciled", 0) + added
            log.warning("planned pushes for alert changes the bus did not deliver to notify", extra={"rows": added})
        return added

    async def _wait(self, delay: float) -> None:
        # the wake flag is cleared by deliver_due() before it reads the outbox, never here: a row enqueued
        # while a pass runs must cut this sleep short
        sleeper = asyncio.ensure_future(self.ctx.clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        await asyncio.sleep(0)  # let both start, so the clock knows the deadline before we report "sleeping"
        self.loops += 1
        self.wake_at = self.ctx.clock.monotonic() + delay
        self.sleeping = not (sleeper.done() or waker.done())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.sleeping = False
            for t in (sleeper, waker):
                t.cancel()

    async def deliver_due(self) -> float:
        """Send every due row once; return how long to sleep before looking again."""
        store, clock = self.ctx.store, self.ctx.clock
        if self._wake is not None:
            self._wake.clear()
        now = clock.time_ms()
        rows = await store.call(self.outbox.due, now)
        paced_wait: float | None = None
        for row in rows:
            wait = self._pace_wait(row["channel"])
            if wait > 0:
                paced_wait = wait if paced_wait is None else min(paced_wait, wait)
                continue
            await self._deliver(row)
        if clock.monotonic() - self._last_purge > 3600:
            self._last_purge = clock.monotonic()
            await store.call(self.outbox.purge, now - PURGE_AFTER_MS)
        if clock.monotonic() - self._last_reconcile >= RECONCILE_EVERY_S:
            self._last_reconcile = clock.monotonic()
            await self.reconcile(now - RECONCILE_WINDOW_MS)
        counts = await store.call(self.outbox.counts)
        self.pending = counts["pending"]
        if len(rows) >= 50:
            return 0.0
        nxt = await store.call(self.outbox.next_due_ms)
        delay = IDLE_S if nxt is None else max(0.0, (nxt - clock.time_ms()) / 1000)
        if paced_wait is not None:
            delay = min(delay, paced_wait)
        delay = min(delay, RECONCILE_EVERY_S - (clock.monotonic() - self._last_reconcile))
        return min(max(delay, 0.05), IDLE_S)

    def _pace_wait(self, channel: str) -> float:
        return max(0.0, self._next_send.get(channel, 0.0) - self.ctx.clock.monotonic())

    def _chan_stat(self, channel: str) -> dict[str, Any]:
        return self.channel_stats.setdefault(channel, {"sent": 0, "failed": 0, "retries": 0, "last_ok_ms": None,
                                                       "last_error": None})

    async def _deliver(self, row: dict) -> None:
        store, clock = self.ctx.store, self.ctx.clock
        cfg = self.config
        now = clock.time_ms()
        ch_id = row["channel"]
        stat = self._chan_stat(ch_id)
        age_ms = now - row["created_ms"]
        max_age_ms = int(cfg.alerts.push_max_age_h * 3600_000)
        if age_ms >= max_age_ms:
            await store.call(self.outbox.mark_final, row["id"], "failed", now,
                             f"given up after {age_ms / 3600_000:.1f} h: {row['last_error'] or 'never sent'}",
                             False)
            self.stats["failed"] += 1
            self.stats["given_up"] += 1
            stat["failed"] += 1
            log.error("push given up: too old", extra={"channel": ch_id, "alert_id": row["alert_id"],
                                                      "attempts": row["attempts"], "age_h": round(age_ms / 3600_000, 2),
                                                      "last_error": row["last_error"], "given_up": self.stats["given_up"]})
            return
        channel = next((c for c in cfg.alerts.channels if c.id == ch_id), None)
        if channel is None:
            await self._fail(row, stat, f"channel {ch_id!r} is no longer in the config", now)
            return
        alert_state = await store.call(self.outbox.alert_state, row["alert_id"])
        if row["purpose"] == "escalation" and alert_state not in UNACKED:
            await store.call(self.outbox.mark_final, row["id"], "cancelled", now, f"alert {alert_state}", False)
            self.stats["cancelled"] += 1
            return
        facts = row["facts"] | {"current_state": alert_state}
        try:
            await self.send(channel, facts, delivery=f"{cfg.gateway.id}:{row['id']}")
        except PushError as exc:
            if exc.permanent:
                await self._fail(row, stat, str(exc), now)
                return
            attempt = row["attempts"] + 1
            delay = min(cfg.alerts.push_retry_max_s, cfg.alerts.push_retry_min_s * 2 ** (attempt - 1))
            delay *= random.uniform(0.8, 1.2)
            # never sleep past the give-up time: the failure is reported when it is due, not at the next retry
            due = min(now + int(delay * 1000), row["created_ms"] + max_age_ms)
            await store.call(self.outbox.mark_retry, row["id"], due, str(exc))
            self.stats["retries"] += 1
            stat["retries"] += 1
            stat["last_error"] = self.last_error = f"{ch_id}: {exc}"
            log.warning("push failed; will retry", extra={"channel": ch_id, "alert_id": row["alert_id"],
                                                          "attempt": attempt, "error": str(exc),
                                                          "retry_in_s": round(delay, 1)})
            return
        await store.call(self.outbox.mark_sent, row["id"], clock.time_ms())
        self.stats["sent"] += 1
        stat["sent"] += 1
        stat["last_ok_ms"] = clock.time_ms()
        log.info("push delivered", extra={"channel": ch_id, "alert_id": row["alert_id"], "purpose": row["purpose"],
                                          "attempts": row["attempts"] + 1})

    async def _fail(self, row: dict, stat: dict, why: str, now: int) -> None:
        await self.ctx.store.call(self.outbox.mark_final, row["id"], "failed", now, why)
        self.stats["failed"] += 1
        stat["failed"] += 1
        stat["last_error"] = self.last_error = f"{row['channel']}: {why}"
        log.error("push refused by the channel; not retried", extra={"channel": row["channel"],
                                                                    "alert_id": row["alert_id"], "error": why})

    async def send(self, channel, facts: dict, delivery: str) -> None:
        """One HTTP request to one channel. Raises PushError (permanent or not) unless the platform accepted it."""
        module = CHANNELS[channel.type]
        try:
            secret = channel.secret.resolve() if channel.secret is not None else None
        except SecretError as exc:
            raise PushError(f"cannot read the channel secret: {exc}", permanent=True) from None
        lang = channel.language or self.config.web.language
        self._next_send[channel.id] = self.ctx.clock.monotonic() + channel.min_interval_s
        req = module.build(channel, secret, facts, lang, self.ctx.clock.time_ms(), delivery)
        session = self._session or aiohttp.ClientSession()
        try:
            async with session.post(req.url, data=req.body, headers=req.headers,
                                    timeout=aiohttp.ClientTimeout(total=channel.timeout_s)) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PushError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        finally:
            if session is not self._session:
                await session.close()
        module.check(status, body)

    async def send_test(self, channel_id: str, actor: str) -> dict[str, Any]:
        """Console "send a test message": direct, not through the outbox, so the installer sees the answer."""
        cfg = self.config
        channel = next((c for c in cfg.alerts.channels if c.id == channel_id), None)
        if channel is None:
            raise KeyError(channel_id)
        now = self.ctx.clock.time_ms()
        facts = {"alert_id": "test", "alert_kind": "gateway.test", "state": "raised", "severity": "info",
                 "title": f"test message from {actor}", "zone": None, "place": cfg.gateway.name or cfg.gateway.id,
                 "ts_ms": now, "tz": cfg.gateway.timezone, "compound": cfg.gateway.name or cfg.gateway.compound_id,
                 "gateway_id": cfg.gateway.id, "compound_id": cfg.gateway.compound_id, "purpose": "test",
                 "link": self.alert_link("test").rsplit("/#/", 1)[0] + "/"}
        delivery = f"{cfg.gateway.id}:test-{hashlib.sha1(str(now).encode()).hexdigest()[:8]}"
        try:
            await self.send(channel, facts, delivery)
        except PushError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}

    async def status(self, limit: int = 50) -> dict[str, Any]:
        store = self.ctx.store
        return {"counts": await store.call(self.outbox.counts),
                "recent": await store.call(self.outbox.recent, limit), "health": self.health()}
