"""Outbox operations of the uplink (the core store only inserts rows and reads depth).

All functions here are synchronous and take the Store; the uplink runs them on the store's own thread with
`await store.call(fn, store, ...)`, so the event loop never waits on SQLite.

Rules kept here:
- a row leaves "pending" only in `mark_sent`, which the uplink calls only for PUBACK reason < 0x80;
- `seq` is the outbox's AUTOINCREMENT key: strictly increasing, never reused, even after deletes/evictions;
- eviction (disk budget) removes the lowest priority first, oldest first, and records every evicted seq so a
  later resend request can be answered with "evicted" instead of silence.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterable

from edge.events import Priority
from edge.store import Store, migrations

migrations.register("cloud_bridge", [
    (1, "pending-bytes accounting per priority, evicted seqs, media upload queue", """
CREATE TABLE uplink_pending (
  priority INTEGER PRIMARY KEY,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
INSERT INTO uplink_pending (priority, rows, bytes)
  SELECT priority, count(*), coalesce(sum(length(body)), 0) FROM outbox WHERE sent_ms IS NULL GROUP BY priority;
CREATE TRIGGER uplink_pending_insert AFTER INSERT ON outbox WHEN new.sent_ms IS NULL BEGIN INSERT INTO uplink_pending (priority, rows, bytes) VALUES (new.priority, 1, length(new.body)) ON CONFLICT(priority) DO UPDATE SET rows = rows + 1, bytes = bytes + excluded.bytes; END;
CREATE TRIGGER uplink_pending_sent AFTER UPDATE OF sent_ms ON outbox WHEN old.sent_ms IS NULL AND new.sent_ms IS NOT NULL BEGIN UPDATE uplink_pending SET rows = rows - 1, bytes = bytes - length(old.body) WHERE priority = old.priority; END;
CREATE TRIGGER uplink_pending_delete AFTER DELETE ON outbox WHEN old.sent_ms IS NULL BEGIN UPDATE uplink_pending SET rows = rows - 1, bytes = bytes - length(old.body) WHERE priority = old.priority; END;
CREATE TABLE uplink_evicted (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  priority INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  evicted_ms INTEGER NOT NULL
);
CREATE INDEX uplink_evicted_ms ON uplink_evicted (evicted_ms);
CREATE TABLE uplink_media (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL,
  seq INTEGER,
  media_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  sent_ms INTEGER,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  UNIQUE (event_id, media_id)
);
CREATE INDEX uplink_media_state ON uplink_media (state, id)
"""),
])


@dataclasses.dataclass(slots=True)
class Row:
    seq: int
    event_id: str
    kind: str
    source: str
    priority: int
    body: str
    sent: bool = False

    def media_ids(self) -> list[str]:
        """Media of the event that are uploaded after it (JPEG snapshots/evidence)."""
        if '"media_id"' not in self.body:  # cheap pre-check; the body is canonical JSON from Event.to_json()
            return []
        try:
            media = json.loads(self.body).get("media") or []
        except ValueError:
            return []
        return [m["media_id"] for m in media if isinstance(m, dict) and m.get("media_id")
                and str(m.get("content_type", "image/jpeg")).startswith("image/jpeg")]


_COLS = "seq, event_id, kind, source, priority, body"


def ensure_schema(store: Store) -> None:
    """Apply this package's migration on an already-open store (the gateway opens the store before it
    imports plug-ins, so import-time registration alone would only take effect on the next start)."""
    with store._lock:
        migrations.apply_all(store.conn, store.now_ms())


def fetch_pending(store: Store, after_seq: int, limit: int) -> list[Row]:
    with store._lock:
        rows = store.conn.execute(f"SELECT {_COLS} FROM outbox WHERE sent_ms IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                                  (after_seq, limit)).fetchall()
    return [Row(*r) for r in rows]


def fetch_range(store: Store, from_seq: int, to_seq: int, limit: int) -> list[Row]:
    with store._lock:
        rows = store.conn.execute(f"SELECT {_COLS}, sent_ms IS NOT NULL FROM outbox WHERE seq BETWEEN ? AND ? "
                                  "ORDER BY seq LIMIT ?", (from_seq, to_seq, limit)).fetchall()
    return [Row(*r) for r in rows]


def mark_sent(store: Store, seqs: Iterable[int], now_ms: int, media: Iterable[tuple[int, str, str]] = (),
              failed: Iterable[tuple[int, int]] = ()) -> int:
    """Rows PUBACKed with reason < 0x80 become sent (kept for the resend window); media of those events are
    queued for upload in the same transaction; failed publishes (reason >= 0x80) are counted on their row."""
    seqs = list(seqs)
    with store.transaction() as conn:
        changed = conn.executemany("UPDATE outbox SET sent_ms = ?, attempts = attempts + 1 "
                                   "WHERE seq = ? AND sent_ms IS NULL", [(now_ms, s) for s in seqs]).rowcount
        conn.executemany("INSERT OR IGNORE INTO uplink_media (event_id, seq, media_id, created_ms) VALUES (?, ?, ?, ?)",
                         [(eid, seq, mid, now_ms) for seq, eid, mid in media])
        conn.executemany("UPDATE outbox SET attempts = attempts + 1, last_reason = ? WHERE seq = ?",
                         [(reason, seq) for seq, reason in failed])
    return changed


def count_attempts(store: Store, seqs: Iterable[int]) -> None:
    """In-flight rows lost with a connection: count the attempt (they stay pending and go out again)."""
    with store.transaction() as conn:
        conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ? AND sent_ms IS NULL",
                         [(s,) for s in seqs])


@dataclasses.dataclass
class Stats:
    depth: int
    bytes: int
    by_priority: dict[int, tuple[int, int]]
    last_seq: int
    pending_from_seq: int
    oldest_pending_ms: int | None


def stats(store: Store) -> Stats:
    with store._lock:
        by = {p: (r, b) for p, r, b in store.conn.execute("SELECT priority, rows, bytes FROM uplink_pending")}
        row = store.conn.execute("SELECT seq, created_ms FROM outbox WHERE sent_ms IS NULL ORDER BY seq LIMIT 1"
                                 ).fetchone()
        last = store.last_seq()
    return Stats(depth=sum(r for r, _ in by.values()), bytes=sum(b for _, b in by.values()), by_priority=by,
                 last_seq=last, pending_from_seq=row[0] if row else last + 1,
                 oldest_pending_ms=row[1] if row else None)


@dataclasses.dataclass
class Eviction:
    rows: int
    freed_bytes: int
    used_bytes: int
    by_kind: dict[str, int]
    by_priority: dict[str, int]
    seqs: list[int]


LOW_WATER = 0.95


def low_water(budget_bytes: int) -> int:
    return int(budget_bytes * LOW_WATER)


def evict_over_budget(store: Store, budget_bytes: int, now_ms: int, protect: Iterable[int] = ()) -> Eviction | None:
    """If unsent bytes exceed the budget, delete unsent rows, lowest priority first and oldest first within a
    priority, until the unsent bytes are at or below the low-water mark (95% of the budget: eviction then runs
    in chunks, and the alert it raises fits without triggering another round). Rows in `protect` (in flight
    right now) are skipped. Returns what was evicted, or None if within budget."""
    protect = set(protect)
    with store.transaction() as conn:
        used = conn.execute("SELECT coalesce(sum(bytes), 0) FROM uplink_pending").fetchone()[0]
        if used <= budget_bytes:
            return None
        excess = used - low_water(budget_bytes)
        victims: list[tuple[int, str, str, int, int]] = []
        freed = 0
        cur = conn.execute("SELECT seq, event_id, kind, priority, length(body) FROM outbox WHERE sent_ms IS NULL "
                           "ORDER BY priority, seq")
        while freed < excess:
            chunk = cur.fetchmany(500)
            if not chunk:
                break
            for seq, eid, kind, prio, size in chunk:
                if seq in protect:
                    continue
                victims.append((seq, eid, kind, prio, size))
                freed += size
                if freed >= excess:
                    break
        cur.close()
        conn.executemany("DELETE FROM outbox WHERE seq = ?", [(v[0],) for v in victims])
        conn.executemany("INSERT OR REPLACE INTO uplink_evicted VALUES (?, ?, ?, ?, ?, ?)",
                         [(s, e, k, p, b, now_ms) for s, e, k, p, b in victims])
    by_kind: dict[str, int] = {}
    by_prio: dict[str, int] = {}
    for _, _, kind, prio, _ in victims:
        by_kind[kind] = by_kind.get(kind, 0) + 1
        name = Priority(prio).name.lower() if prio in Priority._value2member_map_ else str(prio)
        by_prio[name] = by_prio.get(name, 0) + 1
    return Eviction(rows=len(victims), freed_bytes=freed, used_bytes=used - freed, by_kind=by_kind,
                    by_priority=by_prio, seqs=[v[0] for v in victims])


def forget_evicted(store: Store, before_ms: int) -> int:
    with store._lock:
        return store.conn.execute("DELETE FROM uplink_evicted WHERE evicted_ms < ?", (before_ms,)).rowcount


def _ranges(seqs: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def classify_range(store: Store, from_seq: int, to_seq: int) -> dict:
    """For a resend request: which seqs can be republished, which are still pending (they go out anyway),
    which were evicted, aged out, or not assigned yet."""
    with store._lock:
        present = store.conn.execute("SELECT seq, sent_ms IS NULL FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq",
                                     (from_seq, to_seq)).fetchall()
        evicted = [r[0] for r in store.conn.execute(
            "SELECT seq FROM uplink_evicted WHERE seq BETWEEN ? AND ? ORDER BY seq", (from_seq, to_seq))]
        last = store.last_seq()
    sent = [s for s, pending in present if not pending]
    pending = [s for s, p in present if p]
    known = {s for s, _ in present} | set(evicted)
    top = min(to_seq, last)
    unavailable = [s for s in range(from_seq, top + 1) if s not in known]
    return {"sent": _ranges(sent), "queued": len(sent), "pending": len(pending), "evicted": _ranges(evicted),
            "unavailable": _ranges(unavailable),
            "not_yet_assigned": [[max(from_seq, last + 1), to_seq]] if to_seq > last else []}


# ---- media upload queue ---------------------------------------------------------------------------------------
def next_media(store: Store) -> tuple[int, str, int | None, str] | None:
    with store._lock:
        row = store.conn.execute("SELECT id, event_id, seq, media_id FROM uplink_media WHERE state = 'pending' "
                                 "ORDER BY id LIMIT 1").fetchone()
    return tuple(row) if row else None


def finish_media(store: Store, row_id: int, state: str, now_ms: int, error: str | None = None) -> None:
    with store._lock:
        store.conn.execute("UPDATE uplink_media SET state = ?, sent_ms = CASE WHEN ? = 'sent' THEN ? ELSE sent_ms END, "
                           "attempts = attempts + 1, last_error = ? WHERE id = ?", (state, state, now_ms, error, row_id))


def media_counts(store: Store) -> dict[str, int]:
    with store._lock:
        return {s: n for s, n in store.conn.execute("SELECT state, count(*) FROM uplink_media GROUP BY state")}
