"""SQLite store (WAL, synchronous=FULL) for events, outbox, alerts, devices, media and small state.

One connection, one lock, one writer thread: SQLite serialises writers anyway, and a single connection
keeps group commits cheap. Async callers use `await store.call(fn, ...)`, which runs on the store's own
thread so the event loop never waits on fsync.

sqlite-utils creates the database and is used for reads and admin helpers; the hot insert path uses
`executemany` on the raw connection because it is several times faster than row-by-row table inserts.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import sqlite_utils

from edge.events import Event
from edge.events.kinds import KINDS

from . import migrations

T = TypeVar("T")


class StoreError(RuntimeError):
    pass


class Store:
    def __init__(self, path: str | Path, *, synchronous: str = "FULL", clock_ms: Callable[[], int] | None = None):
        self.path = Path(path)
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._lock = threading.RLock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.db = sqlite_utils.Database(self.conn)
        with self._lock:
            self.applied_migrations = migrations.apply_all(self.conn, self._clock_ms())

    # ---- plumbing -----------------------------------------------------------------------------------
    def migrate(self) -> list[tuple[str, int]]:
        """Apply migrations registered since the store was opened (a plug-in imported later). Idempotent."""
        with self._lock:
            applied = migrations.apply_all(self.conn, self._clock_ms())
        self.applied_migrations += applied
        return applied

    def now_ms(self) -> int:
        return self._clock_ms()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def transaction(self):
        return _Tx(self)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self.conn.close()

    def integrity_check(self) -> str:
        with self._lock:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(str(self.path) + suffix)
            except OSError:
                pass
        return total

    # ---- events + outbox ----------------------------------------------------------------------------
    def insert_events(self, events: Iterable[Event], outbox: bool = True) -> list[int]:
        """Insert a batch of events (and their outbox rows) in ONE transaction. Returns outbox seqs.

        Duplicate event ids (a driver re-reading a record) are ignored, not re-queued.
        """
        now = self._clock_ms()
        rows = []
        for e in events:
            rows.append((e, e.to_json()))
        seqs: list[int] = []
        with self._lock, self.transaction():
            cur = self.conn.cursor()
            for e, body in rows:
                cur.execute("INSERT OR IGNORE INTO events (id, ts_ms, kind, source, severity, body, created_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (e.id, e.ts_ms, e.kind, e.source, e.severity.value,
                                                             body, now))
                if cur.rowcount == 0 or not outbox:
                    continue
                prio = int(KINDS[e.kind].priority) if e.kind in KINDS else 2
                cur.execute("INSERT INTO outbox (event_id, kind, source, priority, body, created_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (e.id, e.kind, e.source, prio, body, now))
                seqs.append(cur.lastrowid)
        return seqs

    def get_event(self, event_id: str) -> Event | None:
        with self._lock:
            row = self.conn.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        return Event.from_json(row[0]) if row else None

    def query_events(self, *, kind: str | None = None, source: str | None = None, since_ms: int | None = None,
                     until_ms: int | None = None, text: str | None = None, limit: int = 100,
                     before_id: str | None = None) -> list[Event]:
        where, args = [], []
        if kind:
            if kind.endswith(".*"):
                where.append("kind LIKE ?")
                args.append(kind[:-1] + "%")
            else:
                where.append("kind = ?")
                args.append(kind)
        if source:
            where.append("source = ?")
            args.append(source)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("ts_ms < ?")
            args.append(until_ms)
        if before_id:
            where.append("id < ?")
            args.append(before_id)
        if text:
            where.append("body LIKE ?")
            args.append("%" + text.replace("%", "") + "%")
        sql = "SELECT body FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY ts_ms DESC, id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [Event.from_json(r[0]) for r in rows]

    def count_events(self, kind: str | None = None) -> int:
        with self._lock:
            if kind:
                return self.conn.execute("SELECT count(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0]
            return self.conn.execute("SELECT count(*) FROM events").fetchone()[0]

    def events_by_kind(self) -> dict[str, int]:
        with self._lock:
            return {k: n for k, n in self.conn.execute("SELECT kind, count(*) FROM events GROUP BY kind")}

    # outbox reads used by the uplink; writes (mark sent, evict) live with the uplink in cloud_bridge.
    def outbox_depth(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()[0]

    def outbox_oldest_pending_ms(self) -> int | None:
        with self._lock:
            row = self.conn.execute("SELECT min(created_ms) FROM outbox WHERE sent_ms IS NULL").fetchone()
        return row[0]

    def last_seq(self) -> int:
        with self._lock:
            row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    # ---- key/value state (controller indexes, seq cursors, references) ---------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def kv_set(self, key: str, value: Any) -> None:
        with self._lock:
            self.conn.execute("INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                              "SET value = excluded.value, updated_ms = excluded.updated_ms",
                              (key, json.dumps(value), self._clock_ms()))

    # ---- devices ----------------------------------------------------------------------------------------
    def set_device_state(self, device_id: str, device_type: str, state: str, info: dict | None = None,
                         seen: bool = False) -> None:
        now = self._clock_ms()
        with self._lock:
            self.conn.execute(
                "INSERT INTO devices (id, type, state, last_seen_ms, changed_ms, info) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET type = excluded.type, "
                "changed_ms = CASE WHEN devices.state = excluded.state THEN devices.changed_ms ELSE excluded.changed_ms END, "
                "state = excluded.state, "
                "last_seen_ms = COALESCE(excluded.last_seen_ms, devices.last_seen_ms), info = excluded.info",
                (device_id, device_type, state, now if seen else None, now, json.dumps(info or {}, ensure_ascii=False)))

    def devices(self) -> list[dict]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM devices ORDER BY id").fetchall()
        return [dict(r) | {"info": json.loads(r["info"])} for r in rows]

    # ---- media --------------------------------------------------------------------------------------------
    def media_dir(self) -> Path:
        d = self.path.parent / "media"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_media(self, media_id: str, data: bytes, *, content_type: str = "image/jpeg", role: str = "snapshot",
                  event_id: str | None = None, alert_id: str | None = None) -> Path:
        import hashlib

        now = self._clock_ms()
        day = time.strftime("%Y%m%d", time.gmtime(now / 1000))
        ext = {"image/jpeg": ".jpg", "image/png": ".png", "video/mp4": ".mp4"}.get(content_type, ".bin")
        folder = self.media_dir() / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{media_id}{ext}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as fh:  # write-then-rename so a crash never leaves a half image indexed
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (media_id, event_id, alert_id, str(path.relative_to(self.path.parent)), content_type,
                               len(data), hashlib.sha256(data).hexdigest(), role, now))
        return path

    def get_media(self, media_id: str) -> tuple[dict, bytes] | None:
        with self._lock:
            row = self.conn.execute("SELECT * FROM media WHERE id = ?", (media_id,)).fetchone()
        if not row:
            return None
        try:
            data = (self.path.parent / row["path"]).read_bytes()
        except OSError:
            return None
        return dict(row), data

    # ---- retention ----------------------------------------------------------------------------------------
    def apply_retention(self, *, event_days: float, sent_days: float, media_days: float,
                        max_db_bytes: int | None = None, max_media_bytes: int | None = None) -> dict[str, int]:
        """Delete what has aged out; then, if still over the size budgets, the oldest first.

        Unsent outbox rows are never touched here: only the uplink's priority eviction may drop them,
        and it counts and reports every one.
        """
        now = self._clock_ms()
        removed = {"events": 0, "outbox_sent": 0, "media": 0}
        with self._lock, self.transaction():
            c = self.conn.execute("DELETE FROM outbox WHERE sent_ms IS NOT NULL AND sent_ms < ?",
                                  (now - int(sent_days * 86400_000),))
            removed["outbox_sent"] = c.rowcount
            c = self.conn.execute("DELETE FROM events WHERE ts_ms < ? AND id NOT IN "
                                  "(SELECT event_id FROM outbox WHERE sent_ms IS NULL)",
                                  (now - int(event_days * 86400_000),))
            removed["events"] = c.rowcount
        removed["media"] += self._delete_media("created_ms < ?", (now - int(media_days * 86400_000),))
        if max_media_bytes is not None:
            with self._lock:
                total = self.conn.execute("SELECT coalesce(sum(bytes), 0) FROM media").fetchone()[0]
            if total > max_media_bytes:
                excess = total - max_media_bytes
                with self._lock:
                    rows = self.conn.execute("SELECT id, bytes FROM media ORDER BY created_ms").fetchall()
                ids, freed = [], 0
                for r in rows:
                    if freed >= excess:
                        break
                    ids.append(r["id"])
                    freed += r["bytes"]
                removed["media"] += self._delete_media(f"id IN ({','.join('?' * len(ids))})", tuple(ids)) if ids else 0
        if max_db_bytes is not None and self.size_bytes() > max_db_bytes:
            with self._lock, self.transaction():
                # Oldest already-sent events first, in chunks, until under budget (page reuse, no VACUUM).
                n = self.conn.execute("SELECT count(*) FROM events").fetchone()[0]
                chunk = max(100, n // 10)
                c = self.conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id NOT IN "
                                      "(SELECT event_id FROM outbox WHERE sent_ms IS NULL) ORDER BY ts_ms LIMIT ?)",
                                      (chunk,))
                removed["events"] += c.rowcount
        return removed

    def _delete_media(self, where: str, args: tuple) -> int:
        with self._lock:
            rows = self.conn.execute(f"SELECT id, path FROM media WHERE {where}", args).fetchall()
            for r in rows:
                try:
                    os.unlink(self.path.parent / r["path"])
                except FileNotFoundError:
                    pass
            if rows:
                self.conn.execute(f"DELETE FROM media WHERE {where}", args)
        return len(rows)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT / ROLLBACK; re-entrant (nested use joins the outer transaction)."""

    def __init__(self, store: Store):
        self.store = store
        self.outer = False

    def __enter__(self):
        self.store._lock.acquire()
        if not self.store.conn.in_transaction:
            self.store.conn.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self.store.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.outer:
                if exc_type is None:
                    self.store.conn.execute("COMMIT")
                else:
                    self.store.conn.execute("ROLLBACK")
        finally:
            self.store._lock.release()
        return False
