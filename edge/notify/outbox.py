"""The push outbox: one row per (alert change, route, channel, purpose), kept in the gateway's SQLite store.

Pushes are written here before anything is sent, so a push survives restarts and internet outages the same
way an uplink message does. A row is `pending` until the channel confirms it, then `sent`; it becomes
`failed` when the channel refuses it for good or it is older than alerts.push_max_age_h, and `cancelled`
when it no longer matters (an escalation for an alert somebody acknowledged).
"""
from __future__ import annotations

import json
from typing import Any

from edge.store import migrations

migrations.register("notify", [
    (1, "push outbox", """
CREATE TABLE notify_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dedup TEXT NOT NULL UNIQUE,
  alert_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  route TEXT NOT NULL,
  channel TEXT NOT NULL,
  purpose TEXT NOT NULL,
  facts TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  due_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'pending',
  last_error TEXT,
  done_ms INTEGER
);
CREATE INDEX notify_outbox_due ON notify_outbox (state, due_ms);
CREATE INDEX notify_outbox_alert ON notify_outbox (alert_id, state)
"""),
])

FINAL = ("sent", "failed", "cancelled")


def ensure_schema(store) -> None:
    """Apply migrations registered after the store was opened (plug-ins are imported after the store)."""
    migrate = getattr(store, "migrate", None)
    if callable(migrate):
        migrate()
        return
    with store._lock:  # noqa: SLF001 - the store has no public hook yet; apply_all is idempotent
        migrations.apply_all(store.conn, store.now_ms())


class PushOutbox:
    """Synchronous row operations; call them through `await store.call(...)` from async code."""

    def __init__(self, store):
        self.store = store

    def enqueue(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows; a row whose dedup key exists is ignored (replays after a restart are harmless)."""
        added = 0
        with self.store.transaction() as conn:
            for r in rows:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO notify_outbox (dedup, alert_id, event_id, route, channel, purpose, facts, "
                    "created_ms, due_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["dedup"], r["alert_id"], r["event_id"], r["route"], r["channel"], r["purpose"],
                     json.dumps(r["facts"], ensure_ascii=False), r["created_ms"], r["due_ms"]))
                added += cur.rowcount
        return added

    def due(self, now_ms: int, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT * FROM notify_outbox WHERE state = 'pending' AND due_ms <= ? "
                                "ORDER BY due_ms, id LIMIT ?", (now_ms, limit)).fetchall()
        return [dict(r) | {"facts": json.loads(r["facts"])} for r in rows]

    def next_due_ms(self) -> int | None:
        with self.store.transaction() as conn:
            return conn.execute("SELECT min(due_ms) FROM notify_outbox WHERE state = 'pending'").fetchone()[0]

    def mark_sent(self, row_id: int, now_ms: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE notify_outbox SET state = 'sent', done_ms = ?, attempts = attempts + 1, "
                         "last_error = NULL WHERE id = ?", (now_ms, row_id))

    def mark_retry(self, row_id: int, due_ms: int, error: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE notify_outbox SET attempts = attempts + 1, due_ms = ?, last_error = ? WHERE id = ?",
                         (due_ms, error[:500], row_id))

    def mark_final(self, row_id: int, state: str, now_ms: int, error: str | None, attempted: bool = True) -> None:
        assert state in FINAL
        with self.store.transaction() as conn:
            conn.execute("UPDATE notify_outbox SET state = ?, done_ms = ?, last_error = COALESCE(?, last_error), "
                         "attempts = attempts + ? WHERE id = ?",
                         (state, now_ms, error[:500] if error else None, int(attempted), row_id))

    def cancel_escalations(self, alert_id: str, now_ms: int, why: str) -> int:
        with self.store.transaction() as conn:
            cur = conn.execute("UPDATE notify_outbox SET state = 'cancelled', done_ms = ?, last_error = ? "
                               "WHERE alert_id = ? AND purpose = 'escalation' AND state = 'pending'",
                               (now_ms, why, alert_id))
            return cur.rowcount

    def alert_state(self, alert_id: str) -> str | None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        with self.store.transaction() as conn:
            out = {s: 0 for s in ("pending", *FINAL)}
            for state, n in conn.execute("SELECT state, count(*) FROM notify_outbox GROUP BY state"):
                out[state] = n
        return out

    def recent(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, alert_id, route, channel, purpose, created_ms, due_ms, attempts, state, last_error, " \
              "done_ms, facts FROM notify_outbox"
        args: list[Any] = []
        if state:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self.store.transaction() as conn:
            rows = conn.execute(sql, args).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            facts = json.loads(d.pop("facts"))
            d["title"] = facts.get("title")
            out.append(d)
        return out

    def purge(self, older_than_ms: int) -> int:
        with self.store.transaction() as conn:
            cur = conn.execute("DELETE FROM notify_outbox WHERE state IN ('sent', 'failed', 'cancelled') "
                               "AND done_ms < ?", (older_than_ms,))
            return cur.rowcount
