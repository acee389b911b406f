"""Alert lifecycle: raised → updated → acknowledged (by whom) → resolved (by a person) or cleared (by the system).

One active alert per dedup key (kind + zone/device). A new episode within `cooldown_s` of the previous one's
end re-opens that alert instead of creating another (a flapping sensor must not flood the phone). Every change
is written to `alerts` + `alert_history` and emitted as an `alert` event, so it reaches the uplink
(`.../alert`), the console (live) and the push channels by the same one-way path as everything else.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from edge.events import Event, MediaRef, Severity, uuid7
from edge.runtime.component import Component

from .rules import RULES, Action

log = logging.getLogger("edge.alerts")

ACTIVE = ("raised", "updated", "acknowledged")


class AlertError(ValueError):
    pass


class AlertManager(Component):
    name = "alerts"
    critical = True

    def __init__(self, cooldown_s: float = 300):
        self.cooldown_s = cooldown_s
        self.ctx = None
        self.counts = {"raised": 0, "updated": 0, "cleared": 0, "acknowledged": 0, "resolved": 0, "reopened": 0,
                       "clear_without_alert": 0}

    # ---- component -----------------------------------------------------------------------------------
    def attach(self, ctx) -> None:
        """Subscribe early (before drivers start) so no alerting event is missed."""
        if self.ctx is None:
            self.ctx = ctx
            ctx.services["alerts"] = self
            ctx.subscribe("alerts", self.on_event, kinds=list(RULES))

    async def run(self, ctx) -> None:
        self.attach(ctx)
        while True:
            await ctx.clock.sleep(3600)

    def health(self) -> dict[str, Any]:
        return {"open": self._count_open(), **self.counts}

    async def on_event(self, event: Event) -> None:
        rule = RULES.get(event.kind)
        if rule is None:
            return
        action = rule(event)
        if action is None:
            return
        await self.ctx.store.call(self.apply, action, event)

    # ---- the state machine (runs on the store thread) --------------------------------------------------------
    def apply(self, action: Action, event: Event) -> dict | None:
        store = self.ctx.store
        now = self.ctx.clock.time_ms()
        evidence_new = [m.media_id for m in event.media]
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM alerts WHERE dedup_key = ? ORDER BY raised_ms DESC LIMIT 1",
                               (action.key,)).fetchone()
            active = row is not None and row["state"] in ACTIVE
            if action.op in ("raise", "update"):
                if active:
                    return self._update(conn, row, action, event, evidence_new, now)
                ended = row["resolved_ms"] if row is not None else None
                if row is not None and ended is not None and now - ended < self.cooldown_s * 1000:
                    self.counts["reopened"] += 1
                    return self._update(conn, row, action, event, evidence_new, now, reopen=True)
                if action.op == "update":
                    # an update for an episode we never saw start (gateway restarted mid-episode): raise it
                    pass
                return self._raise(conn, action, event, evidence_new, now)
            # clear
            if not active:
                self.counts["clear_without_alert"] += 1
                return None
            detail = json.loads(row["detail"]) | {"cleared_by": event.kind, "cleared_payload": event.payload}
            conn.execute("UPDATE alerts SET state = 'cleared', resolved_ms = ?, updated_ms = ?, detail = ? "
                         "WHERE id = ?", (now, now, json.dumps(detail, ensure_ascii=False), row["id"]))
            self._history(conn, row["id"], now, "cleared", None, action.title)
            self.counts["cleared"] += 1
            alert = self._row(conn, row["id"])
        self._emit(alert, "cleared", event)
        return alert

    def _raise(self, conn, action: Action, event: Event, evidence: list[str], now: int) -> dict:
        alert_id = uuid7(now)
        conn.execute("INSERT INTO alerts (id, kind, dedup_key, zone, source, severity, state, title, raised_ms, "
                     "updated_ms, detail, evidence) VALUES (?, ?, ?, ?, ?, ?, 'raised', ?, ?, ?, ?, ?)",
                     (alert_id, action.alert_kind, action.key, action.zone, event.source, event.severity.value,
                      action.title, now, now, json.dumps({"event_id": event.id, "payload": event.payload},
                                                         ensure_ascii=False), json.dumps(evidence)))
        if evidence:
            conn.executemany("UPDATE media SET alert_id = ? WHERE id = ?", [(alert_id, m) for m in evidence])
        self._history(conn, alert_id, now, "raised", None, action.title)
        self.counts["raised"] += 1
        alert = self._row(conn, alert_id)
        self._emit(alert, "raised", event)
        return alert

    def _update(self, conn, row, action: Action, event: Event, evidence: list[str], now: int,
                reopen: bool = False) -> dict:
        ev = json.loads(row["evidence"]) + [m for m in evidence if m not in row["evidence"]]
        detail = json.loads(row["detail"]) | {"event_id": event.id, "payload": event.payload}
        state = "raised" if reopen else row["state"] if row["state"] == "acknowledged" else "updated"
        sev = max(Severity(row["severity"]), event.severity, key=lambda s: s.rank).value
        conn.execute("UPDATE alerts SET state = ?, updated_ms = ?, updates = updates + 1, title = ?, detail = ?, "
                     "evidence = ?, severity = ?, resolved_ms = CASE WHEN ? THEN NULL ELSE resolved_ms END "
                     "WHERE id = ?", (state, now, action.title, json.dumps(detail, ensure_ascii=False),
                                      json.dumps(ev), sev, int(reopen), row["id"]))
        if evidence:
            conn.executemany("UPDATE media SET alert_id = ? WHERE id = ?", [(row["id"], m) for m in evidence])
        self._history(conn, row["id"], now, "reopened" if reopen else "updated", None, action.title)
        self.counts["updated"] += 1
        alert = self._row(conn, row["id"])
        self._emit(alert, "raised" if reopen else "updated", event)
        return alert

    # ---- people ------------------------------------------------------------------------------------------------
    def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> dict:
        return self._by_person(alert_id, actor, note, "acknowledged")

    def resolve(self, alert_id: str, actor: str, note: str | None = None) -> dict:
        return self._by_person(alert_id, actor, note, "resolved")

    def _by_person(self, alert_id: str, actor: str, note: str | None, new_state: str) -> dict:
        store = self.ctx.store
        now = self.ctx.clock.time_ms()
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise AlertError(f"no alert with id {alert_id}")
            if row["state"] not in ACTIVE:
                raise AlertError(f"alert is already {row['state']}")
            if new_state == "acknowledged" and row["state"] == "acknowledged":
                raise AlertError(f"alert was already acknowledged by {row['acked_by']}")
            if new_state == "acknowledged":
                conn.execute("UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_ms = ?, updated_ms = ?, "
                             "note = COALESCE(?, note) WHERE id = ?", (actor, now, now, note, alert_id))
            else:
                conn.execute("UPDATE alerts SET state = 'resolved', resolved_ms = ?, updated_ms = ?, "
                             "note = COALESCE(?, note), acked_by = COALESCE(acked_by, ?), "
                             "acked_ms = COALESCE(acked_ms, ?) WHERE id = ?", (now, now, note, actor, now, alert_id))
            self._history(conn, alert_id, now, new_state, actor, note)
            self.counts[new_state] += 1
            alert = self._row(conn, alert_id)
        self._emit(alert, new_state, None, actor=actor, note=note)
        return alert

    # ---- reads -------------------------------------------------------------------------------------------------
    def get(self, alert_id: str) -> dict | None:
        with self.ctx.store.transaction() as conn:
            return self._row(conn, alert_id)

    def list(self, *, state: str | None = None, kind: str | None = None, zone: str | None = None,
             active_only: bool = False, limit: int = 100) -> list[dict]:
        where, args = [], []
        if active_only:
            where.append("state IN ('raised', 'updated', 'acknowledged')")
        if state:
            where.append("state = ?")
            args.append(state)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if zone:
            where.append("zone = ?")
            args.append(zone)
        sql = "SELECT id FROM alerts" + (" WHERE " + " AND ".join(where) if where else "") + \
              " ORDER BY raised_ms DESC LIMIT ?"
        with self.ctx.store.transaction() as conn:
            ids = [r[0] for r in conn.execute(sql, args + [int(limit)])]
            return [self._row(conn, i) for i in ids]

    def history(self, alert_id: str) -> list[dict]:
        with self.ctx.store.transaction() as conn:
            return [dict(r) for r in conn.execute("SELECT ts_ms, action, actor, note FROM alert_history "
                                                  "WHERE alert_id = ? ORDER BY id", (alert_id,))]

    def _count_open(self) -> int:
        try:
            with self.ctx.store.transaction() as conn:
                return conn.execute("SELECT count(*) FROM alerts WHERE state IN ('raised','updated','acknowledged')"
                                    ).fetchone()[0]
        except Exception:
            return -1

    @staticmethod
    def _row(conn, alert_id: str) -> dict | None:
        row = conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["detail"] = json.loads(d["detail"])
        d["evidence"] = json.loads(d["evidence"])
        return d

    @staticmethod
    def _history(conn, alert_id: str, now: int, action: str, actor: str | None, note: str | None) -> None:
        conn.execute("INSERT INTO alert_history (alert_id, ts_ms, action, actor, note) VALUES (?, ?, ?, ?, ?)",
                     (alert_id, now, action, actor, note))

    def _emit(self, alert: dict, state: str, cause: Event | None, actor: str | None = None,
              note: str | None = None) -> None:
        payload = {"alert_id": alert["id"], "alert_kind": alert["kind"], "state": state, "zone": alert["zone"],
                   "title": alert["title"], "detail": {"cause_event": cause.id if cause else None,
                                                       "cause_kind": cause.kind if cause else None,
                                                       "updates": alert["updates"],
                                                       "raised": alert["raised_ms"]},
                   "actor": actor, "note": note}
        media = tuple(MediaRef(m, role="evidence") for m in alert["evidence"][-3:]) if state == "raised" else ()
        e = self.ctx.make_event("alert", alert["source"], payload, severity=alert["severity"], media=media)
        # emitted from the store thread: hand it to the loop thread-safely
        loop = self.ctx.services.get("loop")
        if loop is not None:
            loop.call_soon_threadsafe(self.ctx.emit, e)
        else:
            self.ctx.emit(e)
